"""csrc/pc_proto's tokenizer alone: find, terminate, split and classify request lines.

The C file beside this one loops over a buffer of 100 requests 100 times per call (built here
with the release flags, called through ctypes), so a figure is the cost of 10,000 requests:
divide by 10,000 for one. Run with `make bench-micro`.
"""
import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO_C = ROOT / "csrc" / "pc_proto.c"
LOOP_C = Path(__file__).with_name("proto_loop.c")
PASSES = 100
REQUESTS = 100


@pytest.fixture(scope="module")
def tokenize(tmp_path_factory):
    if not PROTO_C.exists() or shutil.which("gcc") is None:
        pytest.skip("needs csrc/pc_proto.c and gcc")
    lib = tmp_path_factory.mktemp("proto") / "proto_loop.so"
    subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-DNDEBUG", "-shared", "-fPIC",
                    f"-I{ROOT / 'csrc'}", str(PROTO_C), str(LOOP_C), "-o", str(lib)], check=True)
    fn = ctypes.CDLL(str(lib)).pcb_tokenize_passes
    fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_long]
    fn.restype = ctypes.c_long
    return fn


def key(i):
    return b"key:%010d" % (i * 7919 % 10_000)


VALUE = b"v" * 100
BUFFERS = {
    "get": b"".join(b"get %s\r\n" % key(i) for i in range(REQUESTS)),
    "get-10-keys": b"".join(b"get " + b" ".join(key(i * 10 + j) for j in range(10)) + b"\r\n"
                            for i in range(REQUESTS)),
    "set": b"".join(b"set %s 0 0 100\r\n%s\r\n" % (key(i), VALUE) for i in range(REQUESTS)),
    "mg-v": b"".join(b"mg %s v\r\n" % key(i) for i in range(REQUESTS)),
    "mg-6-flags": b"".join(b"mg %s s v f t c k\r\n" % key(i) for i in range(REQUESTS)),
    "ms": b"".join(b"ms %s 100 T0 F0\r\n%s\r\n" % (key(i), VALUE) for i in range(REQUESTS)),
}


@pytest.mark.parametrize("name", list(BUFFERS))
def test_tokenize_10k_requests(benchmark, tokenize, name):
    benchmark.group = "tokenizer: 100 passes over 100 requests"
    buf = BUFFERS[name]
    seen = benchmark(tokenize, buf, len(buf), PASSES)
    assert seen == PASSES * REQUESTS
