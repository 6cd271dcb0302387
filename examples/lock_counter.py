"""A replicated lock + counter: run three of these (ids 1, 2, 3) and call them from any one."""
from openraft_fast.replicated import ReplicatedNode, ReplicatedObject, command, query


class LockCounter(ReplicatedObject):
    def __init__(self):
        self.count = 0
        self.locks = {}                     # lock name -> owner

    @command
    def incr(self, n=1):
        self.count += n
        return self.count

    @command
    def acquire(self, name, owner):
        if self.locks.setdefault(name, owner) != owner:
            raise KeyError(f"{name} is held by {self.locks[name]}")

    @command
    def release(self, name, owner):
        if self.locks.get(name) == owner:
            del self.locks[name]

    @query
    def value(self):
        return self.count


async def main(node_id, peers, data_dir):
    counter = LockCounter()
    node = await ReplicatedNode.start(counter, node_id, peers, data_dir)
    await counter.acquire("job", f"node{node_id}")          # ApplyError(KeyError) if another node holds it
    print(node_id, "counted", await counter.incr(), "now", await counter.value())
    await counter.release("job", f"node{node_id}")
    await node.close()


if __name__ == "__main__":
    import sys
    from openraft_fast import run
    peers = {int(i): addr for i, addr in (p.split("=") for p in sys.argv[2].split(","))}
    run(main(int(sys.argv[1]), peers, sys.argv[3]))
