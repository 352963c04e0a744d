"""An asyncio job of the kind servers run: a producer and a consumer on a queue paced by
timers, a ping-pong over a socket pair through stream readers and writers, a thread-pool
task, periodic call_later callbacks and a signal handler (the loop's self-pipe). Prints
STEP lines while it runs and one RESULT line at the end, the same on every run."""
import asyncio
import hashlib
import os
import signal
import socket
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 400


async def producer(q):
    for i in range(N):
        await q.put(i)
        await asyncio.sleep(0.003)
    await q.put(None)


async def consumer(q, out):
    h = hashlib.sha256()
    while (i := await q.get()) is not None:
        h.update(i.to_bytes(4, "little"))
        if i % 50 == 0:
            print(f"STEP {i}", flush=True)
    out["queue"] = h.hexdigest()[:16]


async def pingpong(out):
    a, b = socket.socketpair()
    r1, w1 = await asyncio.open_connection(sock=a)
    r2, w2 = await asyncio.open_connection(sock=b)
    total = 0
    for i in range(N):
        w1.write(b"%d\n" % i)
        await w1.drain()
        total += int(await r2.readline())
        w2.write(b"%d\n" % (2 * i))
        await w2.drain()
        total += int(await r1.readline())
        await asyncio.sleep(0.001)
    out["pingpong"] = total
    w1.close()
    w2.close()


def blocking(n):
    return sum(k * k for k in range(n))


async def main():
    loop = asyncio.get_running_loop()
    got = []
    loop.add_signal_handler(signal.SIGUSR1, lambda: got.append("usr1"))
    out = {}
    ticks = []

    def tick(k):
        ticks.append(k)
        if k < 20:
            loop.call_later(0.05, tick, k + 1)

    loop.call_later(0.05, tick, 0)
    pooled = loop.run_in_executor(None, blocking, 200000)
    q = asyncio.Queue(maxsize=8)
    await asyncio.gather(producer(q), consumer(q, out), pingpong(out))
    os.kill(os.getpid(), signal.SIGUSR1)
    await asyncio.sleep(0.1)
    out["executor"] = await pooled
    while len(ticks) < 21:
        await asyncio.sleep(0.05)
    out["ticks"] = ticks
    out["signal"] = got
    print("RESULT", sorted(out.items()), flush=True)


asyncio.run(main())
