"""Message encoding: every message survives a round trip; garbage only ever raises MessageError."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycache_cluster.gossip import messages as m

names = st.text(min_size=1, max_size=40)
hosts = st.sampled_from(["127.0.0.1", "10.1.2.3", "::1", "node-7.cache.svc"])
u32 = st.integers(0, 2**32 - 1)
ports = st.integers(0, 65535)
blobs = st.binary(max_size=600)

message = st.one_of(
    st.builds(m.Ping, u32, names),
    st.builds(m.IndirectPing, u32, names, hosts, ports, st.booleans()),
    st.builds(m.Ack, u32),
    st.builds(m.Nack, u32),
    st.builds(m.Alive, u32, names, hosts, ports, blobs),
    st.builds(m.Suspect, u32, names, names),
    st.builds(m.Dead, u32, names, names),
)
push_pull = st.builds(
    m.PushPull, st.booleans(),
    st.lists(st.builds(m.PushState, names, hosts, ports, u32, st.integers(0, 3), blobs),
             max_size=20))


@given(st.lists(message, min_size=1, max_size=8))
def test_payload_round_trip(msgs):
    assert m.decode_payload(m.encode_payload(msgs)) == msgs


@given(st.one_of(message, push_pull))
def test_stream_round_trip(msg):
    assert m.decode_stream(m.encode(msg)) == msg


@given(st.lists(message, min_size=1, max_size=4))
def test_stream_packet_carries_a_whole_payload(msgs):
    assert m.decode_stream(m.encode_stream_packet(m.encode_payload(msgs))) == msgs


@given(st.binary(max_size=200))
def test_garbage_raises_only_message_error(data):
    for decode in (m.decode_payload, m.decode_stream):
        try:
            decode(data)
        except m.MessageError:
            pass


@given(st.lists(message, max_size=3), message, st.data())
def test_truncated_payload_is_rejected(head, last, data):
    payload = m.encode_payload(head + [last])
    # Anywhere inside the last frame: a cut between frames leaves a valid shorter payload.
    start = len(payload) - len(m.frame(m.encode(last)))
    cut = data.draw(st.integers(start + 1, len(payload) - 1))
    with pytest.raises(m.MessageError):
        m.decode_payload(payload[:cut])


def test_name_longer_than_255_bytes_is_refused():
    with pytest.raises(m.MessageError):
        m.encode(m.Ping(1, "x" * 256))
