"""Every HTTP endpoint on `listen`: the probes and metrics, the JSON API, the status page and a
call's story, and the providers' pushes taken in; with the listener's defences."""
