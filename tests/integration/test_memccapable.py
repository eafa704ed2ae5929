"""libmemcached's conformance tool against our node: every test must pass, in the ASCII and
the binary protocol."""
import shutil
import subprocess

import pytest

MEMCCAPABLE = shutil.which("memccapable")


@pytest.mark.skipif(MEMCCAPABLE is None,
                    reason="memccapable not installed (apt-get install libmemcached-tools)")
@pytest.mark.parametrize("protocol", ["-a", "-b"], ids=["ascii", "binary"])
def test_memccapable(pycache, protocol):
    out = subprocess.run([MEMCCAPABLE, "-h", "127.0.0.1", "-p", str(pycache.port), protocol,
                          "-t", "10"], capture_output=True, text=True, timeout=120, check=False)
    lines = out.stdout.splitlines()
    passed = [ln for ln in lines if ln.rstrip().endswith("[pass]")]
    failed = [ln for ln in lines if "[fail]" in ln or "[FAIL]" in ln]
    assert not failed, out.stdout + out.stderr
    assert len(passed) == 27, out.stdout + out.stderr
    assert "All tests passed" in out.stdout
    assert out.returncode == 0
