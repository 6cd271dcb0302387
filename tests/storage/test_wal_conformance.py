"""The LogStore conformance suite on WalLogStore (tiny segments, so rotation is exercised)."""
from openraft_fast.storage import WalLogStore
from openraft_fast.testing.conformance import LogStoreSuite


class TestWalLogStore(LogStoreSuite):
    segment_bytes = 4096

    def make_store(self):
        return WalLogStore(self.new_path(), segment_bytes=self.segment_bytes)

    async def reopen_store(self, store):
        await store.close()
        return WalLogStore(store.path, segment_bytes=self.segment_bytes)

    async def close_store(self, store):
        await store.close()


class TestWalLogStoreBigSegments(TestWalLogStore):
    segment_bytes = 1 << 20
