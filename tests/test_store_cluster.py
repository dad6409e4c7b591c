"""The store contract (tests/store_contract.py) on a three-primary Redis Cluster: every
script and read of a channel runs on the node owning its hash tag's slot."""

import pytest

from tests.store_contract import StoreContract


class TestStoreOnACluster(StoreContract):
    @pytest.fixture
    def url(self, redis_cluster_url: str) -> str:
        return redis_cluster_url  # redis+cluster://, as parley.redis.connect_redis reads it
