"""Drive a server with memcaslap (libmemcached-tools) and parse what it prints.

memcaslap's get/set mix, key and value sizes come from a `-F` config file with `key`, `value`
and `cmd` sections (cmd type 0 = set, 1 = get); multi-get is `-d N`. At the end it prints
`cmd_get: N`, `cmd_set: N`, `get_misses: N` and `Run time: 5.0s Ops: N TPS: N Net_rate: ...`.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from bench import servers

BINARY = "memcaslap"


@dataclass(frozen=True)
class SlapConfig:
    key_size: int = 32
    value_size: int = 100
    get_ratio: float = 0.9
    concurrency: int = 32
    threads: int = 1
    multiget: int = 1          # -d: keys per multi-get
    window: str = "10k"        # -w: keys per concurrency (bounds the working set)

    def config_text(self) -> str:
        return (
            "key\n"
            f"{self.key_size} {self.key_size} 1\n"
            "value\n"
            f"{self.value_size} {self.value_size} 1\n"
            "cmd\n"
            f"0 {1.0 - self.get_ratio:.4f}\n"
            f"1 {self.get_ratio:.4f}\n"
        )


@dataclass(frozen=True)
class SlapResult:
    ops: int
    tps: float
    seconds: float
    cmd_get: int
    cmd_set: int
    get_misses: int
    output: str


_FINAL = re.compile(r"Run time:\s*([\d.]+)s\s+Ops:\s*(\d+)\s+TPS:\s*(\d+)")


def available() -> bool:
    return shutil.which(BINARY) is not None


def _last_int(name: str, text: str) -> int:
    found = re.findall(rf"^{name}:\s*(\d+)", text, re.MULTILINE)
    return int(found[-1]) if found else 0


def parse(output: str) -> SlapResult:
    m = None
    for m in _FINAL.finditer(output):
        pass
    if m is None:
        raise RuntimeError(f"could not parse memcaslap output:\n{output[-2000:]}")
    return SlapResult(
        ops=int(m.group(2)), tps=float(m.group(3)), seconds=float(m.group(1)),
        cmd_get=_last_int("cmd_get", output), cmd_set=_last_int("cmd_set", output),
        get_misses=_last_int("get_misses", output), output=output,
    )


def command(address: tuple[str, int], cfg: SlapConfig, seconds: float, cfg_path: str) -> list[str]:
    argv = [BINARY, "-s", f"{address[0]}:{address[1]}", "-T", str(cfg.threads),
            "-c", str(cfg.concurrency), "-t", f"{max(1, round(seconds))}s", "-F", cfg_path,
            "-w", cfg.window]
    if cfg.multiget > 1:
        argv += ["-d", str(cfg.multiget)]
    return argv


def run(address: tuple[str, int], cfg: SlapConfig, seconds: float) -> SlapResult:
    """Run memcaslap to completion against `address`; raises if it fails."""
    with tempfile.NamedTemporaryFile("w", prefix="memcaslap-", suffix=".cfg") as f:
        f.write(cfg.config_text())
        f.flush()
        proc = servers.register(subprocess.Popen(
            command(address, cfg, seconds, f.name), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
        try:
            out, _ = proc.communicate(timeout=seconds + 60)
        finally:
            servers.kill_process(proc)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"memcaslap exited {proc.returncode}:\n{text[-2000:]}")
    return parse(text)
