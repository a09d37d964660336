"""A shared dashboard's reads next to the authenticated retrieve of the same dashboard, under wrk.

Starts PostgreSQL (DATABASE_URL when set — use a throwaway database — else an embedded server), one
`tilecast serve` (one worker), ingests synthetic events, builds the 20-insight dashboard of
`bench_dashboard_tiles.py`, warms its results (`?refresh=blocking`) and shares it. Then measures, alternating
the targets each round (their order reversed every other round):

  - retrieve (key):   `GET …/dashboards/{id}/` with `Authorization: Bearer phx_…` (cache only);
  - shared .json:     `GET /shared/{token}.json` (the exported data: the same dashboard in shared context,
                      `lazy_async`, so fresh cached results serve; plus the team's themes);
  - retrieve (grant): `GET …/dashboards/{id}/?sharing_access_token={token}`;
  - shared .json, password-protected: the same with a JWT as `Authorization: Bearer` (one more statement:
    the password is still active);
  - `stream_tiles` with the grant and with the key, when the build serves it.

Prints every run, then the medians with the server's CPU per request.

    python benchmarks/bench_sharing.py [--rounds 2] [--seconds 5] [--events 20000]
"""

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import wrk
from bench_dashboard_tiles import build_dashboard, ingest
from harness import cpu_seconds, create_key, database, machine_line, server_processes, tilecast_process


@dataclass
class Target:
    name: str
    path: str
    headers: dict[str, str]
    runs: list[wrk.WrkResult] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def setup(base: str, info: dict[str, object], events: int) -> list[Target]:
    team = int(str(info["team_id"]))
    headers = {"Authorization": f"Bearer {info['key']}"}
    ingest(base, str(info["project_api_key"]), events)
    dashboard = build_dashboard(base, team, headers)
    protected = build_dashboard(base, team, headers)
    api = f"{base}/api/environments/{team}/dashboards"
    with httpx.Client(headers=headers, timeout=120) as http:
        for board in (dashboard, protected):
            http.get(f"{api}/{board}/", params={"refresh": "blocking"}).raise_for_status()
        token = http.patch(f"{api}/{dashboard}/sharing/", json={"enabled": True}).json()["access_token"]
        locked = http.patch(
            f"{api}/{protected}/sharing/", json={"enabled": True, "password_required": True}
        ).json()["access_token"]
        http.post(f"{api}/{protected}/sharing/passwords/", json={"raw_password": "bench password"})
    jwt = httpx.post(f"{base}/shared/{locked}", json={"password": "bench password"}).json()["shareToken"]
    path = f"/api/environments/{team}/dashboards/{dashboard}/"
    targets = [
        Target("retrieve (key)", path, headers),
        Target("shared .json", f"/shared/{token}.json", {}),
        Target("retrieve (grant)", f"{path}?sharing_access_token={token}", {}),
        Target("shared .json (JWT)", f"/shared/{locked}.json", {"Authorization": f"Bearer {jwt}"}),
    ]
    # `stream_tiles` with the grant, when this build serves it (its SSE stream ends with `complete`).
    stream = f"{path}stream_tiles/?sharing_access_token={token}"
    if httpx.get(f"{base}{stream}", timeout=60).status_code == 200:
        targets.append(Target("stream_tiles (grant)", stream, {}))
        targets.append(Target("stream_tiles (key)", f"{path}stream_tiles/", headers))
    else:
        print("stream_tiles is not served by this build: not measured")
    for t in targets:
        if "stream_tiles" in t.path:
            continue
        response = httpx.get(f"{base}{t.path}", headers=t.headers, timeout=60)
        response.raise_for_status()
        body = response.json()
        tiles = (body.get("dashboard") or body)["tiles"]
        assert all(tile["insight"]["result"] is not None for tile in tiles), t.name
        print(f"{t.name:<20} {len(response.content) / 1024:6.0f} KB, {len(tiles)} tiles", flush=True)
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    wrk.require_wrk()
    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-sharing-"))
    with database(work) as (_url, env, embedded):
        info = create_key(env, work)
        with tilecast_process(env, work) as (base, proc):
            targets = setup(base, info, args.events)
            procs = server_processes(proc)
            for t in targets:  # warm-up
                wrk.run(t.name, f"{base}{t.path}", seconds=1, headers=t.headers, connections=args.connections)
            print(machine_line(embedded))
            for round_ in range(args.rounds):
                for t in targets if round_ % 2 == 0 else reversed(targets):
                    before = cpu_seconds(procs)
                    result = wrk.run(
                        t.name, f"{base}{t.path}", seconds=args.seconds, headers=t.headers,
                        connections=args.connections,
                    )  # fmt: skip
                    t.cpu_ms.append((cpu_seconds(procs) - before) * 1000 / max(result.requests, 1))
                    t.runs.append(result)
                    print(result.line(), flush=True)
    print(
        f"\nmedians of {args.rounds} rounds of {args.seconds:.0f} s, wrk -t2 -c{args.connections}, one worker"
    )
    print(f"{'target':<22}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}{'errors':>8}")
    for t in targets:
        m = wrk.median(t.name, t.runs)
        cpu = statistics.median(t.cpu_ms)
        print(f"{t.name:<22}{m.rps:8.0f}{m.p50_ms:9.1f}{m.p99_ms:9.1f}{cpu:12.2f}{m.errors:8d}")


if __name__ == "__main__":
    main()
