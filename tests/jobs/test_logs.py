"""logs.py: tsp table parsing, pane commands, the tmux command line, and a real tmux server."""

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bootsep.jobs.logs import (
    Pane,
    TspJob,
    find_tsp,
    follow,
    follow_command,
    main,
    newest_log,
    pane_commands,
    parse_tsp_table,
    run_folder_panes,
    tmux_command,
    tsp_panes,
)

ROOT = Path(__file__).resolve().parents[2]

# Captured from task-spooler 1.0.1 (Debian 12 `tsp`), plus rows with overflowing columns.
TSP_OUTPUT = """\
ID   State      Output               E-Level  Times(r/u/s)   Command [run=2/3]
5    running    stdout                                       sleep 5
0    running    /tmp/ts-out.aZf871                           sh -c echo hi there; sleep 30
6    queued     (file)                                       [5]&& false
2    finished   /tmp/ts-out.KM9IFK   0        0.00/0.00/0.00 true
3    finished   /tmp/ts-out.WJ7C4e   1        0.00/0.00/0.00 false
4    finished   /tmp/ts-out.GYLe3e   -1       2.77/0.00/0.00 [my]label echo a b  c
7    finished   /tmp/ts-out.bLgN1W   0        36123.25/35000.10/12.00 python train.py --lr 0.1
12345 running    /home/someone/a/very/long/tmpdir/ts-out.QQQQQQ                           ./main.py all -c 'runs/a b/config.gin' --note a-long-note-for-the-title
8    skipped    (no output)                                  [7]&& echo 5
"""


def test_parse_tsp_table_rows():
    jobs = parse_tsp_table(TSP_OUTPUT)
    assert [j.id for j in jobs] == [5, 0, 6, 2, 3, 4, 7, 12345, 8]
    by = {j.id: j for j in jobs}
    assert by[5] == TspJob(5, "running", "stdout", None, None, "sleep 5")
    assert by[0] == TspJob(0, "running", "/tmp/ts-out.aZf871", None, None,
                           "sh -c echo hi there; sleep 30")
    assert by[6] == TspJob(6, "queued", "(file)", None, None, "[5]&& false")
    assert by[3] == TspJob(3, "finished", "/tmp/ts-out.WJ7C4e", "1", "0.00/0.00/0.00", "false")
    assert by[4].command == "[my]label echo a b  c"  # inner double space kept
    assert by[4].e_level == "-1"
    # times wider than their column push the command right
    assert by[7].times == "36123.25/35000.10/12.00" and by[7].command == "python train.py --lr 0.1"
    # id and output wider than their columns shift every later column
    assert by[12345] == TspJob(12345, "running", "/home/someone/a/very/long/tmpdir/ts-out.QQQQQQ",
                               None, None, "./main.py all -c 'runs/a b/config.gin' --note a-long-note-for-the-title")
    assert by[8] == TspJob(8, "skipped", "(no output)", None, None, "[7]&& echo 5")


def test_parse_header_variants_and_junk():
    # a different column set (newer forks) and a message line before the header
    text = ("warning: something\n"
            "ID   State      Output               E-Level  Time   GPUs  Command [run=0/1]\n"
            "1    finished   /tmp/o.1             0        1.00s  0     echo  x\n"
            "2    running    /tmp/o.2                             1     sleep 9\n")
    a, b = parse_tsp_table(text)
    assert (a.e_level, a.extra, a.command) == ("0", {"Time": "1.00s", "GPUs": "0"}, "echo  x")
    assert (b.e_level, b.extra, b.command) == (None, {"Time": None, "GPUs": "1"}, "sleep 9")
    assert parse_tsp_table("ID   State      Output               E-Level  Times(r/u/s)   "
                           "Command [run=0/1]\n") == []
    with pytest.raises(ValueError, match="header"):
        parse_tsp_table("c: connect: No such file or directory\n")


def test_tsp_panes_only_running_jobs_with_server_env():
    jobs = parse_tsp_table(TSP_OUTPUT)
    panes = tsp_panes(jobs, tsp="tsp", env={})
    assert [p.command.split(";")[0] for p in panes] == ["tsp -t 5", "tsp -t 0", "tsp -t 12345"]
    assert panes[1].title == "job 0: sh -c echo hi there; sleep 30"
    assert panes[2].title == "a b (job 12345)"  # the run folder of -c .../config.gin
    # when the job ends the pane prints its exit status (tsp -t exits with the job's code)
    assert panes[0].command.endswith(
        "printf '\\n[%s ended: exit status %s]\\n' 'job 5: sleep 5' \"$?\"")
    panes = tsp_panes(jobs, tsp="ts", env={"TS_SOCKET": "/tmp/my sock", "HOME": "/x"})
    assert panes[0].command.startswith("TS_SOCKET='/tmp/my sock' ts -t 5; ")


def test_job_titles_are_run_names():
    from bootsep.jobs.logs import job_title, run_name_of_command

    py = "/very/long/path/to/a/virtual/env/.venv/bin/python"
    cmd = f"{py} ./allocate.py 1 {py} main.py all -c /data/runs/sweep/run3:lr_0.001/config.gin"
    assert run_name_of_command(cmd) == "run3:lr_0.001"
    assert job_title(TspJob(4, "running", None, None, None, cmd)) == "run3:lr_0.001 (job 4)"
    labelled = f"[run0:clip_percentile_10]{cmd}"  # run.sh labels each job (tsp -L)
    assert job_title(TspJob(5, "running", None, None, None, labelled)) == \
        "run0:clip_percentile_10 (job 5)"
    assert run_name_of_command(f"{py} main.py train -c a.gin -o runs/x/") == "x"
    assert run_name_of_command("[5]&& false") is None  # a dependency, not a label
    t = job_title(TspJob(6, "running", None, None, None, f"{py} ./bench/x.py --n 3"))
    assert t == "job 6: python x.py --n 3"  # no interpreter path eats the title


def _touch(path: Path, text: str, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def test_run_folder_panes(tmp_path):
    t = time.time()
    a = tmp_path / "run a"
    _touch(a / "logs" / "2026.01.02-00.00.00.log", "old", t - 100)
    new = _touch(a / "logs" / "2026.01.01-00.00.00.log", "new", t)  # newer by mtime
    _touch(a / "logs" / "notes.txt", "", t + 10)
    b = tmp_path / "b"
    (b / "logs").mkdir(parents=True)
    single = _touch(tmp_path / "x.log", "", t)
    assert newest_log(a) == new and newest_log(b) is None
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    panes, problems = run_folder_panes([a, b, tmp_path / "missing", single, script])
    assert panes == [Pane("run a", follow_command(a)), Pane("x.log", follow_command(single))]
    assert shlex.split(panes[0].command)[-2:] == ["--follow", str(a)]
    assert len(problems) == 3 and "no logs/*.log" in problems[0] and "no such" in problems[1]
    assert "run.sh" in problems[2]  # a file a glob matched opens no pane
    assert pane_commands([a]) == panes[:1]
    deep = tmp_path / ("d" * 80) / "run7:lr_1"
    _touch(deep / "logs" / "1.log", "", t)
    assert run_folder_panes([deep])[0][0].title == "run7:lr_1"  # the name, not a long path
    assert run_folder_panes([deep / "logs" / "1.log"])[0][0].title == "run7:lr_1"


def _provenance(run: Path, status: str, start: str, end: str | None) -> None:
    import json

    (run / "provenance.json").write_text(json.dumps({"invocations": [
        {"command": "all", "start": start, "end": end, "status": status}]}))


def test_follow_prints_the_last_lines_then_the_exit_status(tmp_path):
    import io

    run = tmp_path / "run1:x"
    log = _touch(run / "logs" / "2026.01.02-03.04.05.log",
                 "".join(f"line {i}\n" for i in range(30)), time.time())
    # an earlier invocation that ended does not end the following of the newer log
    _provenance(run, "ok", "2026-01-02T03:00:00", "2026-01-02T03:01:00")
    out = io.StringIO()
    assert follow(run, lines=5, poll=0.01, out=out, max_seconds=0.2) == 0
    assert out.getvalue() == "".join(f"line {i}\n" for i in range(25, 30))
    with open(log, "a") as f:
        f.write("last words\n")
    _provenance(run, "failed: RuntimeError", "2026-01-02T03:04:05", "2026-01-02T03:09:00")
    out = io.StringIO()
    assert follow(run, lines=2, poll=0.01, out=out) == 1
    assert out.getvalue() == ("line 29\nlast words\n\n[run1:x ended: exit status "
                              "failed: RuntimeError at 2026-01-02T03:09:00]\n")


def _split(cmd: str) -> list[list[str]]:
    """tmux argv after the socket options, cut at the ';' separators."""
    argv = shlex.split(cmd)
    subs, cur = [], []
    for tok in argv[1:]:
        if tok == ";":
            subs.append(cur)
            cur = []
        else:
            cur.append(tok)
    return subs + [cur]


def test_tmux_command_structure_and_quoting():
    panes = [Pane("job 1: a#b", "tsp -t 1"), Pane("run 'x'", "tail -F '/a b/c.log'")]
    cmd = tmux_command(panes, socket="sock")
    assert cmd.startswith("tmux -L sock set -g pane-border-status top \\; ")
    subs = _split(cmd)
    assert subs[0] == ["-L", "sock", "set", "-g", "pane-border-status", "top"]
    assert subs[1] == ["set", "-g", "pane-border-format", "#{pane_index}: #{pane_title}"]
    # reversed splits keep the given order on screen; '#' is escaped in titles
    keep = ["set-option", "-p", "remain-on-exit", "on"]  # ended panes stay open
    assert subs[2:] == [
        ["split-window", "tail -F '/a b/c.log'"], keep, ["select-pane", "-T", "run 'x'"],
        ["last-pane"], ["select-layout", "tiled"],
        ["split-window", "tsp -t 1"], keep, ["select-pane", "-T", "job 1: a##b"], ["last-pane"],
        ["select-layout", "tiled"],
    ]
    assert not tmux_command([]).startswith("tmux -L")


# --------------------------------------------------------------------------------------------
# main() with fake binaries on PATH


def _bin(tmp_path: Path, name: str, script: str) -> Path:
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    f = d / name
    f.write_text("#!/bin/sh\n" + script)
    f.chmod(0o755)
    return d


def _fake_tmux_and_tsp(tmp_path, table: str, monkeypatch):
    (tmp_path / "table.txt").write_text(table)
    d = _bin(tmp_path, "tsp", f'cat "{tmp_path}/table.txt"\n')
    _bin(tmp_path, "tmux", "exit 0\n")
    monkeypatch.setenv("PATH", f"{d}:/usr/bin:/bin")
    monkeypatch.delenv("TS_SOCKET", raising=False)
    monkeypatch.delenv("TMPDIR", raising=False)


def test_main_mode1_prints_one_tmux_line(tmp_path, monkeypatch, capsys):
    _fake_tmux_and_tsp(tmp_path, TSP_OUTPUT, monkeypatch)
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and err == ""
    splits = [s[1].split(";")[0] for s in _split(out) if s[0] == "split-window"]
    assert splits == ["tsp -t 12345", "tsp -t 0", "tsp -t 5"]


def test_main_mode1_without_running_jobs(tmp_path, monkeypatch, capsys):
    table = "\n".join(TSP_OUTPUT.splitlines()[0:1] + TSP_OUTPUT.splitlines()[3:5]) + "\n"
    _fake_tmux_and_tsp(tmp_path, table, monkeypatch)
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "no running tsp jobs" in err


def test_main_without_tmux_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(_bin(tmp_path, "tsp", "exit 0\n")))
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "tmux is not installed" in err


def test_main_mode2_without_any_log_exits_1(tmp_path, monkeypatch, capsys):
    _fake_tmux_and_tsp(tmp_path, TSP_OUTPUT, monkeypatch)
    (tmp_path / "run").mkdir()
    assert main([str(tmp_path / "run")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "no logs/*.log" in err


def test_find_tsp_accepts_ts_only_if_it_is_task_spooler(tmp_path, monkeypatch):
    d = _bin(tmp_path, "ts", 'echo "Task Spooler v1.0.1 - a task queue system"\n')
    monkeypatch.setenv("PATH", str(d))
    assert find_tsp() == "ts"
    _bin(tmp_path, "ts", "cat > /dev/null\n")  # moreutils' ts: a timestamp filter
    assert find_tsp() is None
    _bin(tmp_path, "tsp", "exit 0\n")
    assert find_tsp() == "tsp"


def test_logs_script_help():
    r = subprocess.run([sys.executable, str(ROOT / "logs.py"), "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0
    assert "mode 1" in r.stdout and "mode 2" in r.stdout and "tail -F" in r.stdout


# --------------------------------------------------------------------------------------------
# A real tmux server


def test_generated_command_opens_panes_in_a_real_tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    t = time.time()
    runs = [tmp_path / "run0:lr_1", tmp_path / "run1:lr_10"]
    for i, run in enumerate(runs):
        _touch(run / "logs" / f"2026.01.0{i + 1}-00.00.00.log", f"line {i}\n", t)
    # run1 has ended: its pane shows the last lines and the exit status, and stays open
    _provenance(runs[1], "ok", "2026-01-02T00:00:00", "2026-01-02T00:05:00")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")  # matched by a glob: no pane
    socket = f"bootsep-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    tmux = ["tmux", "-L", socket]
    subprocess.run(tmux + ["-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50"],
                   check=True, env=env, timeout=30)
    try:
        r = subprocess.run([sys.executable, str(ROOT / "logs.py"), "-L", socket,
                            *map(str, sorted(tmp_path.iterdir()))],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        subprocess.run(["sh", "-c", r.stdout], check=True, env=env, timeout=30)

        def panes():
            listing = subprocess.run(
                tmux + ["list-panes", "-F", "#{pane_index}|#{pane_title}|#{pane_active}|"
                        "#{pane_dead}|#{pane_dead_status}"],
                capture_output=True, text=True, check=True, env=env, timeout=30).stdout
            return [line.split("|") for line in listing.splitlines()]

        rows = panes()
        assert len(rows) == 1 + 2  # no pane for run.sh
        assert [rows[1][1], rows[2][1]] == ["run0:lr_1", "run1:lr_10"]  # run names, given order
        assert rows[0][2] == "1"  # focus back on the original pane
        deadline = time.time() + 90  # the pane runs python: slow on a loaded machine
        while time.time() < deadline and panes()[2][3] != "1":
            time.sleep(0.2)
        rows = panes()
        # the ended pane is kept (its follower's exit status, or none when tmux saw it end by a
        # signal on a loaded machine); run0's pane keeps following
        assert rows[2][3] == "1" and rows[2][4] in ("0", "") and rows[1][3] == "0"
        shown = subprocess.run(tmux + ["capture-pane", "-p", "-S", "-", "-t", rows[2][0]],
                               capture_output=True, text=True, env=env, timeout=30).stdout
        assert "line 1" in shown and "[run1:lr_10 ended: exit status ok" in shown
        fmt = subprocess.run(tmux + ["show", "-gv", "pane-border-status"], capture_output=True,
                             text=True, env=env, timeout=30).stdout.strip()
        assert fmt == "top"
    finally:
        subprocess.run(tmux + ["kill-server"], env=env, timeout=30, capture_output=True)
