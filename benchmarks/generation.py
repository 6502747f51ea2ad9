"""Benchmark: generation concurrency (openai backend) and grounded-composer throughput.

1. 12 generation requests (4 bundled segments x 3 tones) against a local
   Chat Completions server on 127.0.0.1 that answers every request after a fixed
   latency (1 s by default): wall time at concurrency 8 and at concurrency 1.
   Target: <= 2.5 s at concurrency 8 (sequential is ~12 s). Each run uses a fresh
   reply cache, so every request really goes to the server.
2. The ``grounded`` backend's throughput: variants per second over repeated
   requests for the bundled segments, and the whole generate stage (12 variants
   + control, validation and grounding included) on a prepared run folder.

    python benchmarks/generation.py
    python benchmarks/generation.py --latency 1.0 --grounded-rounds 50
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine

from cpo.config import load_config
from cpo.generation.base import GenerationContext, generate_many
from cpo.generation.grounded import GroundedGenerator
from cpo.generation.openai_compat import OpenAIGenerator, OpenAISettings
from cpo.generation.prompts import PromptLibrary
from cpo.generation.service import build_requests
from cpo.generation.stage import GenerateStage
from cpo.pipeline import run_pipeline
from cpo.retrieval.stage import RetrieveStage
from cpo.run_folder import read_profiles, read_retrieval, segment_snippets
from cpo.segmentation.stage import SegmentStage
from cpo.stage_api import RunOptions

ROOT = Path(__file__).resolve().parent.parent


def _server_module():
    """The test suite's fake Chat Completions server (loaded by path)."""
    path = ROOT / "tests" / "generation" / "fake_chat_server.py"
    spec = importlib.util.spec_from_file_location("fake_chat_server", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_chat_server"] = module
    spec.loader.exec_module(module)
    return module


def _prepared_run(folder: Path):
    """Segment and retrieve the bundled sample; return the requests and the run folder."""
    config = load_config()
    run_dir = folder / "run"
    run_pipeline(run_dir, config, RunOptions(), stages=[SegmentStage(), RetrieveStage()])
    profiles = read_profiles(run_dir)
    retrieval = read_retrieval(run_dir)
    snippets = {p.name: segment_snippets(retrieval, p.name) for p in profiles}
    return config, build_requests(config, profiles, snippets), run_dir


def _openai_wall_time(config, requests, server_url: str, concurrency: int, cache: Path) -> float:
    """Seconds to generate every request at a concurrency (fresh cache)."""
    settings = OpenAISettings(
        base_url=f"{server_url}/v1",
        model="bench-model",
        concurrency=concurrency,
        cache_dir=str(cache),
    )
    setup = GenerationContext(
        config.experiment.generation, PromptLibrary.for_config(config), None, cache
    )
    generator = OpenAIGenerator.from_settings(settings, setup)
    started = time.perf_counter()
    variants = generate_many(generator, requests)
    elapsed = time.perf_counter() - started
    failed = [v for v in variants if v.status != "generated"]
    if failed:
        raise SystemExit(f"{len(failed)} variants failed: {failed[0].error}")
    return elapsed


def bench_concurrency(config, requests, latency: float, folder: Path) -> None:
    """Part 1: 12 requests at 1 s latency, concurrency 8 vs 1."""
    server_module = _server_module()
    with server_module.ChatServer() as server:
        server.state.latency_s = latency
        parallel = _openai_wall_time(config, requests, server.url, 8, folder / "cache8")
        peak = server.state.max_in_flight
        server.state.max_in_flight = 0
        sequential = _openai_wall_time(config, requests, server.url, 1, folder / "cache1")
    print(f"\nopenai backend, {len(requests)} requests, server latency {latency:.1f} s each")
    print(f"  concurrency 8: {parallel:6.2f} s  (peak in flight {peak})  target <= 2.5 s")
    print(f"  concurrency 1: {sequential:6.2f} s")
    print(f"  speed-up:      {sequential / parallel:6.2f} x")


def bench_grounded(config, requests, run_dir: Path, rounds: int) -> None:
    """Part 2: grounded composer throughput and the whole generate stage."""
    prompts = PromptLibrary.for_config(config)
    setup = GenerationContext(config.experiment.generation, prompts)
    generator = GroundedGenerator(setup)
    generate_many(generator, requests)  # warm up (tone files parsed once)
    started = time.perf_counter()
    for _ in range(rounds):
        generate_many(generator, requests)
    elapsed = time.perf_counter() - started
    count = rounds * len(requests)
    print(f"\ngrounded backend, {count} variants ({rounds} rounds of {len(requests)})")
    print(
        f"  {elapsed:6.2f} s, {count / elapsed:8.1f} variants/s, "
        f"{elapsed / count * 1000:6.2f} ms per variant"
    )
    stage_times = []
    for _ in range(5):
        started = time.perf_counter()
        run_pipeline(run_dir, config, resume=True, stages=[GenerateStage()])
        stage_times.append(time.perf_counter() - started)
        (run_dir / "variants.json").unlink()
    print(
        f"  generate stage (12 variants + control, written to variants.json): "
        f"best {min(stage_times) * 1000:.0f} ms of 5"
    )


def main() -> None:
    """Parse arguments, print the machine, run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=1.0, help="server latency (s)")
    parser.add_argument("--grounded-rounds", type=int, default=50)
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory(prefix="cpo-bench-generation-") as scratch:
        folder = Path(scratch)
        config, requests, run_dir = _prepared_run(folder)
        bench_concurrency(config, requests, args.latency, folder)
        bench_grounded(config, requests, run_dir, args.grounded_rounds)


if __name__ == "__main__":
    main()
