"""The store contract (tests/store_contract.py) on one redis-server."""

import pytest

from tests.store_contract import StoreContract


class TestStoreOnOneRedis(StoreContract):
    @pytest.fixture
    def url(self, redis_url: str) -> str:
        return redis_url
