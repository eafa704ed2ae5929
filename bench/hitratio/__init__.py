"""Miss ratio per byte of memory: request streams replayed over the protocol to our node and
to memcached, and through libCacheSim's policies (python -m bench.hitratio)."""
