"""Builds pycache_cluster's native parts: the C core in csrc/ and the Cython modules over it.

PYCACHE_DEBUG=1 builds with assertions, AddressSanitizer and UBSan (see `make test-asan`).
"""
import os
import sysconfig

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("PYCACHE_DEBUG") == "1"

# Our own C is held to -Werror; Cython's generated C is not ours to warn about.
CORE_FLAGS = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
            "-fno-omit-frame-pointer"]
if DEBUG:
    CORE_FLAGS += ["-O1", "-g", "-UNDEBUG", *SANITIZE]
    EXT_COMPILE, EXT_LINK = ["-O1", "-g", "-UNDEBUG", *SANITIZE], SANITIZE
else:
    CORE_FLAGS += ["-O2", "-DNDEBUG"]
    EXT_COMPILE, EXT_LINK = ["-O2"], []

CORE_SOURCES = [f"csrc/{name}.c" for name in ("pc_item", "pc_large", "pc_log", "pc_table", "pc_policy",
                                                 "pc_store", "pc_proto", "pc_ring", "pc_reply",
                                                 "pc_watch", "pc_binproto", "pc_prefix")]


def extension(name, pyx):
    return Extension(
        name,
        [pyx],
        include_dirs=["csrc"],
        libraries=["pccore"],
        extra_compile_args=EXT_COMPILE,
        extra_link_args=EXT_LINK,
    )


extensions = [
    extension("pycache_cluster.store._store", "pycache_cluster/store/_store.pyx"),
    extension("pycache_cluster.store._feed", "pycache_cluster/store/_feed.pyx"),
    extension("pycache_cluster.protocol._native", "pycache_cluster/protocol/_native.pyx"),
    extension("pycache_cluster.protocol._conn", "pycache_cluster/protocol/_conn.pyx"),
    extension("pycache_cluster.cluster._ring", "pycache_cluster/cluster/_ring.pyx"),
    extension("pycache_cluster.cluster._coord", "pycache_cluster/cluster/_coord.pyx"),
    extension("pycache_cluster.cluster._link", "pycache_cluster/cluster/_link.pyx"),
]

setup(
    libraries=[("pccore", {"sources": CORE_SOURCES, "include_dirs": ["csrc"],
                           "cflags": CORE_FLAGS})],
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"embedsignature": True},
        compile_time_env={"PYCACHE_DEBUG": DEBUG},
        build_dir=sysconfig.get_platform() + ("-debug" if DEBUG else ""),
    ),
    # The extensions compile side by side (pip's builds and `setup.py build` alike).
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
)
