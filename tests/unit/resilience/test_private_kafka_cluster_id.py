"""The private brokers' cluster ids: every one is an argument the storage tool accepts."""

import base64

from faults import new_cluster_id


def test_no_cluster_id_starts_with_a_dash_and_each_is_sixteen_bytes() -> None:
    # One id in 64 would start with "-" if drawn without the check: 4000 draws make a miss near certain.
    ids = [new_cluster_id() for _ in range(4000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
