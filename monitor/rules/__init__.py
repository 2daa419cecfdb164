"""Alert rules, from YAML to alerts.

Files become rules in `loader` (YAML with positions) → `schema` (pydantic shapes) → `compile`
(names checked, `where` and templates compiled into a `match.Rule`); `checks` adds what
`callmon check` reports. Evaluation is pure: `engine` runs one step (`run.Run`) of events or a
clock tick through the stages `timers`, `decide`, `windows`, `batches` and `render`, reading and
changing the typed `state`, and returns an `Outcome` of alerts and state changes that the caller
commits. Templates run in `sandbox` within `bounds`; `regex` is RE2; `schedule` and `silence` are
what is in force, passed in by the caller. Nothing here imports providers, the store or
delivery."""
