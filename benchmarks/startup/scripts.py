"""The programs the startup benchmark runs as whole processes (standard library only).

Each is the text of a file written into the measured folder and run as ``python FILE`` there, so
the interpreter's start, every import and the process's exit (a tracking library writing what it
was told before the process ends) are all inside the figure. A program prints one JSON line.
"""

from __future__ import annotations

STEPS = 20

#: keel: the 20 trivial steps (a module, so that keel can hash step sources for its cache keys)
KEEL_STEPS = """
import keel


@keel.step
def inc(x):
    return x + 1


@keel.pipeline
def chain(n: int = 20, x0: int = 0):
    x = x0
    for _ in range(n):
        x = inc(x)
    return x
"""

KEEL_PIPELINE = """
import json
import keel_steps

result = keel_steps.chain.run({"n": STEPS}, progress=False)
assert result.ok and result.outputs == STEPS, (result.ok, result.outputs)
print(json.dumps({"cache_hits": sum(1 for r in result.nodes.values() if r.cache_hit)}))
""".replace("STEPS", str(STEPS))

#: the first start_run of a process: timed inside the process (perf_counter, and the main thread's
#: CPU: thread_time() counts from the interpreter's start), and stamped with the wall clock, which
#: the runner compares with the moment it launched the process
KEEL_START_RUN = """
import time

t0 = time.perf_counter()
import keel

t1, c1 = time.perf_counter(), time.thread_time()
run = keel.start_run(experiment="bench")
t2, c2, stamp = time.perf_counter(), time.thread_time(), time.time()
keel.log_param("lr", 0.1)
keel.log_metric("loss", 0.5, step=1)
run.end()
import json

print(json.dumps({"import_s": t1 - t0, "start_run_s": t2 - t1, "start_run_cpu_s": c2 - c1,
                  "to_start_run_cpu_s": c2, "returned_at": stamp, "run_id": run.run_id}))
"""

#: Hamilton: s1..s20, each taking the previous one's output
HAMILTON_MODULE = "def s1(x0: int) -> int:\n    return x0 + 1\n\n" + "\n".join(
    f"def s{i}(s{i - 1}: int) -> int:\n    return s{i - 1} + 1\n" for i in range(2, STEPS + 1)
)

HAMILTON_PIPELINE = """
import json
from hamilton import driver
import hchain

dr = driver.Builder().with_modules(hchain).with_cache(path="hcache").build()
result = dr.execute(["sSTEPS"], inputs={"x0": 0})
assert result["sSTEPS"] == STEPS
events = dr.cache.logs(level="debug").get(dr.cache.last_run_id, [])  # results the cache answered
hits = sum(1 for e in events if e.event_type.value == "get_result" and e.msg == "hit")
print(json.dumps({"cache_hits": hits}))
""".replace("STEPS", str(STEPS))

#: Kedro: d0 -> d1 -> ... -> d20 in memory; Kedro has no step cache, so every process runs them all
KEDRO_PIPELINE = """
import json
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import node, pipeline
from kedro.runner import SequentialRunner


def inc(x):
    return x + 1


pipe = pipeline([node(inc, f"d{i}", f"d{i + 1}", name=f"s{i + 1}") for i in range(STEPS)])
catalog = DataCatalog({"d0": MemoryDataset(0), "dSTEPS": MemoryDataset()})
SequentialRunner().run(pipe, catalog)
assert catalog.load("dSTEPS") == STEPS
print(json.dumps({"cache_hits": None}))
""".replace("STEPS", str(STEPS))
