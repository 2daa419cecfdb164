"""Fake provider APIs and call traffic, for `callmon demo`, `callmon simulate` and the tests.

One module per vendor API, written from the vendor's documentation (it shares no code with
`monitor.sources`): `vms`, `bird`, `cinnox`, `bandwidth`, each a `common.FakeApi` with its routes;
`traffic` rings calls through them; `faults` injects errors, slowness and hostile bodies; `server`
serves them all on one aiohttp app."""
