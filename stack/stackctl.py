"""Local stack controller: every service of the pipeline as a local process.

    stackctl up       start what is not running, wait for real health checks,
                      submit the Flink job and deploy the connectors
    stackctl down     stop what this controller started (Flink job stopped
                      with a savepoint, resumed from it by the next `up`)
    stackctl status   one line per service
    stackctl logs     tail of each service's log
    stackctl reset    down, then delete all pipeline data (keeps installs)
    stackctl supervise  (started by `up`) restart crashed services, resume the job
    stackctl stop/start SERVICE   one service on purpose (the supervisor leaves it)
    stackctl connectors / pipeline-apply / pipeline-status / pipeline-render

Each service's configuration is a file under stack/<service>/; data, logs,
pid files and generated secrets live under the stack home (.stack/ by default,
git-ignored). Everything binds to 127.0.0.1.

This module is only the command line; the work is done, and imported by other
tools, from: common.py (settings, secrets), processes.py (the process layer),
services.py (the service table, health checks), provision.py (one-time set-up),
sink.py (Kafka Connect, sink lag), pipeline.py (the Flink job), progress.py and
supervisor.py (restarts, stalls), lifecycle.py (up, down, reset).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import typer
from rich.markup import escape

from . import lifecycle, pipeline, progress, supervisor
from .common import API_URL, HOME, KAFKA, RUN, StackError, _tail, console, flink_env, flink_home, say, settings
from .processes import memory_mib, running_pid
from .services import SERVICES, control_lock, start_service, stop_service
from .sink import deploy_connectors, empty_serving_tables

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.command()
def up(api: bool = typer.Option(True, help="also start the HTTP API")) -> None:
    """Start the whole stack (idempotent) and return when everything is healthy."""
    t0 = time.monotonic()
    try:
        with control_lock():
            lifecycle.up(api)
    except (StackError, subprocess.CalledProcessError, httpx.HTTPError) as e:
        console.print(f"[red]✗ stack start failed:[/] {e}")
        raise typer.Exit(1) from e
    console.print(f"[bold green]stack up[/] in {time.monotonic() - t0:.1f}s — dashboard: {API_URL}/")


@app.command()
def connectors() -> None:
    """Deploy every connectors/*.json (curl PUT, idempotent) and wait until each task runs."""
    try:
        deploy_connectors()
    except (StackError, subprocess.CalledProcessError, httpx.HTTPError) as e:
        console.print(f"[red]✗ connectors:[/] {e}")
        raise typer.Exit(1) from e
    say("[green]✓[/] connectors running")


@app.command("pipeline-apply")
def pipeline_apply(
    version: int = typer.Option(None, help="the script version to roll out (default: the latest sql/v<N>_*.sql)"),
    reprocess: bool = typer.Option(
        False, help="recount every post from the start instead of resuming from a savepoint"
    ),
) -> None:
    """Roll out a pipeline version: stop the live job with a savepoint and start the
    new script from it when its state fits, else recount every post from the start."""
    try:
        scripts = pipeline.scripts()
        if version is not None and version not in scripts:
            raise StackError(f"no script for version {version} (have: {', '.join(f'v{v}' for v in scripts)})")
        pipeline.apply(scripts.get(version), reprocess, reprocess_hook=empty_serving_tables)
    except (StackError, httpx.HTTPError) as e:
        console.print(f"[red]✗ pipeline-apply failed:[/] {e}")
        raise typer.Exit(1) from e


@app.command("pipeline-status")
def pipeline_status() -> None:
    """Which pipeline version is live, and how it started."""
    try:
        print(json.dumps(pipeline.status(), indent=2))
    except httpx.HTTPError as e:
        console.print("[red]Flink is not running[/]")
        raise typer.Exit(1) from e


@app.command("pipeline-render")
def pipeline_render(version: int = typer.Option(None, help="default: the latest")) -> None:
    """Print a script with its placeholders filled in, ready for Flink's sql-client -f."""
    script = pipeline.scripts()[version] if version is not None else pipeline.latest()
    print(pipeline.Target().render(script))


@app.command()
def sql(
    file: Path = typer.Option(None, "--file", "-f", help="run this script and exit with its status"),
    version: int = typer.Option(None, help="declare the tables of this script version (default: the live one)"),
) -> None:
    """A Flink SQL shell on the running stack, through the SQL gateway, with the
    pipeline's functions, tables and views already declared: `SELECT * FROM
    hashtag_counts;` shows the live changelog. With --file, runs the script and exits."""
    if file is not None and not file.is_file():
        console.print(f"[red]no such file: {file}[/]")
        raise typer.Exit(2)
    try:
        live = pipeline.status().get("live_version") if version is None else version
    except httpx.HTTPError as e:
        console.print("[red]Flink does not answer: start the stack first (make up)[/]")
        raise typer.Exit(1) from e
    script = pipeline.scripts().get(live) or pipeline.latest()
    init = RUN / "sql-shell-init.sql"
    RUN.mkdir(parents=True, exist_ok=True)
    init.write_text(
        f"-- the pipeline's declarations ({script.path.name}), for `make sql`\n"
        + "".join(f"{s};\n" for s in pipeline.declarations(pipeline.Target().render(script))),
        encoding="utf-8",
    )
    client = [
        "bash",
        str(flink_home() / "bin" / "sql-client.sh"),
        "gateway",
        "--endpoint",
        urlsplit(settings.sql_gateway_url).netloc,
        "--init",
        str(init),
        *(["--file", str(file.resolve())] if file else []),
    ]
    env = os.environ | flink_env()
    if file is None:  # interactive: the client has the terminal
        raise typer.Exit(subprocess.run(client, env=env).returncode)
    # Flink's client reports a statement that failed but still exits 0 (gateway
    # mode): its output is passed on and read for the error
    failed = False
    with subprocess.Popen(client, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            failed |= "[ERROR]" in line
    raise typer.Exit(1 if failed else proc.returncode)


@app.command("stop")
def stop_cmd(service: str = typer.Argument(..., help="|".join(SERVICES))) -> None:
    """Stop one service (e.g. for maintenance); the supervisor will not restart it."""
    if service not in SERVICES:
        console.print(f"[red]no service {service!r}[/] (one of: {', '.join(SERVICES)})")
        raise typer.Exit(2)
    say(f"stopped {service}" if stop_service(service) else f"{service} was not running")


@app.command("start")
def start_cmd(service: str = typer.Argument(..., help="|".join(SERVICES))) -> None:
    """Start one service stopped with `stop` and wait until it is healthy."""
    if service not in SERVICES:
        console.print(f"[red]no service {service!r}[/] (one of: {', '.join(SERVICES)})")
        raise typer.Exit(2)
    try:
        start_service(service)
    except StackError as e:
        console.print(f"[red]✗ {e}[/]")
        raise typer.Exit(1) from e


@app.command()
def supervise(interval: float = typer.Option(1.0, help="seconds between rounds")) -> None:
    """Watch the stack (what `up` starts as a service): restart what crashes or stalls."""
    supervisor.run(interval)


@app.command()
def down() -> None:
    """Stop what this controller started, the Flink job with a savepoint first."""
    if SERVICES["supervisor"].stop():  # first, or it would restart what is being stopped
        say("stopped supervisor")
    with control_lock():
        lifecycle.down()


@app.command()
def status() -> None:
    """One line per service: running or not, healthy or not, memory (PSS)."""
    all_ok = True
    total = 0.0
    for svc in SERVICES.values():
        pid = running_pid(svc.name)
        ok = pid is not None and svc.healthy()
        all_ok &= ok
        # the supervisor's children are the services it restarted: counted above
        mem = memory_mib(pid, children=svc.name != "supervisor") if pid else 0.0
        total += mem
        state = "[green]healthy[/]" if ok else ("[yellow]running, unhealthy[/]" if pid else "[red]stopped[/]")
        console.print(f"{svc.name:18} {state:30} pid={pid or '-':<8} mem={mem:6.0f} MiB  log={svc.log}")
    console.print(f"{'total':18} {'':16} memory {total:,.0f} MiB (PSS)")
    if running_pid("flink-jobmanager"):
        try:
            st = pipeline.status()
            console.print(
                f"{'pipeline':18} v{st['live_version']} {st['state']}: {st['started']}"
                if st["live_version"]
                else f"{'pipeline':18} [red]not running[/]"
            )
        except (httpx.HTTPError, StackError):
            pass
    if running_pid("kafka"):
        all_ok &= show_progress()
    if not all_ok:
        raise typer.Exit(1)


def show_progress() -> bool:
    """Each stage's progress as the supervisor last judged it (or, without a
    supervisor, what waits now); False when a stage is stalled."""
    seen = json.loads(supervisor.PROGRESS_FILE.read_text()) if supervisor.PROGRESS_FILE.exists() else {}
    age = time.time() - seen.get("checked_at", 0)
    # (the supervisor checks every second, but not while it restarts something)
    if running_pid("supervisor") and age < 180:
        verdicts = [progress.Verdict(**v) for v in seen["stages"]]
        note = (
            (
                f" [dim](as of {age:.0f} s ago"
                + (f", healing the {seen['healing']}" if seen.get("healing") else "")
                + ")[/]"
            )
            if age > 10
            else ""
        )
    else:
        watch = progress.Watch(KAFKA, supervisor.STALL_AFTER)
        try:
            verdicts = [watch.check(stage) for stage in supervisor.pipeline_stages()]
        finally:
            watch.close()
        note, seen = " [dim](not judged: the supervisor is not watching)[/]", {}
    colour = {"idle": "green", "moving": "green", "stalled": "red", "paused": "yellow", "unknown": "yellow"}
    for v in verdicts:
        console.print(f"{v.stage:18} [{colour[v.state]}]{v.state}[/]: {escape(v.message)}{note}")
    if seen.get("heals"):
        last = seen["last_heal"]
        console.print(
            f"{'healed':18} "
            + ", ".join(f"{k} {n}x" for k, n in seen["heals"].items())
            + f"; last at {time.strftime('%H:%M:%S', time.localtime(last['at']))}: {escape(last['action'])}"
        )
    return not any(v.state == "stalled" for v in verdicts)


@app.command()
def logs(service: str = typer.Argument(None, help="one service; all if omitted"), lines: int = 20) -> None:
    """Print the tail of each service's log."""
    for svc in SERVICES.values():
        if service in (None, svc.name):
            console.rule(str(svc.log))
            print(_tail(svc.log, lines))


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", help="do not ask")) -> None:
    """Stop everything and delete all pipeline data (topics, counts, state, logs). Installs stay."""
    if not yes and not typer.confirm(f"Delete all pipeline data under {HOME}?"):
        raise typer.Exit(1)
    lifecycle.reset()
    console.print("stack data deleted")


if __name__ == "__main__":
    app()
