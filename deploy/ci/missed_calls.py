"""Run inside a callmon container of the replicas compose file (stdlib only): the simulated VMS's
missed calls newer than a call id, and which of them callmon's API shows as sent.

    python - SIM_URL VMS_TOKEN API_URL AFTER_ID < missed_calls.py

Prints one JSON object: `newest` (the highest call id), `missed` (ids) and `sent` (the ids among
them whose missed-intercom-call alert has a delivery marked sent).
"""

import json
import sys
import urllib.request


def get(url: str, headers: dict[str, str] | None = None) -> dict:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def main(sim: str, token: str, api: str, after: int) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-Client": "web", "X-UUID": "image-test"}
    url: str | None = f"{sim}/api/v1/intercom/calls?per_page=100"
    calls = []
    while url:
        page = get(url, headers)
        calls += page["data"]
        url = page["links"]["next"]
        if url:
            url += "&per_page=100"
    missed = sorted(c["id"] for c in calls if c["status"] == "missed" and c["id"] > after)
    alerts = get(f"{api}/api/v1/alerts?limit=1000")["alerts"]
    sent = {
        int(a["call_id"])
        for a in alerts
        if a["rule"] == "missed-intercom-call"
        and any(d["status"] == "sent" for d in a["deliveries"])
    }
    newest = max((c["id"] for c in calls), default=0)
    print(json.dumps({"newest": newest, "missed": missed, "sent": sorted(sent & set(missed))}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
