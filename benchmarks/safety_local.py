"""Benchmark: throughput of the local safety screen (``LocalSafetyAnalyzer.analyze``).

Generates N marketing emails of about 150 words from a seeded pool of sentences
(many with marketing idioms such as "killer deal" or "shoot us an email", so
the idiom and modifier code paths run) and mixes in a share of unsafe
sentences (threats, slurs, self-harm, sexual content, some disguised with
leetspeak, spacing or look-alike letters). It then times ``analyze`` over all
texts on ONE core and prints texts/s, per-text latency percentiles and how many
texts scored >= 4 (review) and >= 6 (block).

Lexicon loading is timed separately (it happens once per process).

    python benchmarks/safety_local.py                 # 5,000 texts, 150 words
    python benchmarks/safety_local.py --texts 20000 --unsafe-share 0.2
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine

from cpo.safety.local import LocalSafetyAnalyzer

SAFE_SENTENCES = [
    "Our spring collection just landed and it is a total knockout.",
    "Members get free shipping on every order over fifty dollars.",
    "Shoot us an email if you need help choosing a size.",
    "The new trail runners are light, grippy and built to last.",
    "This weekend only, our killer deal takes thirty percent off outerwear.",
    "The chocolate truffles in our holiday box are to die for.",
    "Returns are dead simple: print the label and drop it off.",
    "Crush your fitness goals with our new training plans.",
    "Our baristas roast every batch in small lots for a richer cup.",
    "Beat the rush and order your gifts before the fifteenth.",
    "Every purchase gives you a shot at winning a weekend getaway.",
    "Our linen shirts come in drop-dead gorgeous colours this season.",
    "At this price, the espresso machine is a steal.",
    "Treat yourself to a bath bomb sampler with six new scents.",
    "We have seen explosive growth in our loyalty programme this year.",
    "Our support team is available every day from eight to eight.",
    "You are killing it: you have earned a reward on your next order.",
    "Fight frizz all day with our argan oil conditioner.",
    "Hot new arrivals are waiting for you in the summer shop.",
    "The bombproof backpack survived our toughest field tests.",
    "Kill two birds with one stone and bundle your home and auto cover.",
    "Our sale ends tonight, so do not miss it.",
    "Give our meal kits a try and save twenty percent on your first box.",
    "Cut yourself a slice of our famous carrot cake at any cafe.",
    "The deadline to redeem your voucher is the end of the month.",
    "Stay warm on the slopes with our insulated jackets and gloves.",
    "Our stylists picked these looks just for you.",
    "Sign in to see your points balance and exclusive offers.",
    "Thank you for being part of our community for three years.",
    "Questions about your order? Reply to this email and we will help.",
]

UNSAFE_SENTENCES = [
    "I will kill you if you cancel your order.",
    "We know where you live and we are going to hurt your family.",
    "Immigrants are vermin and should be exterminated.",
    "Go back to where you came from.",
    "You should kill yourself, nobody would miss you.",
    "I want to end my life tonight.",
    "Watch hardcore porn videos free, click here.",
    "Send us nude photos of teens.",
    "I w1ll k1ll y0u.",
    "k i l l  y o u r s e l f",
    "Refugees are subhuman p\u0430r\u0430sites.",
    "Hot singles in your area want to fuck tonight.",
]


def make_texts(count: int, words: int, unsafe_share: float, seed: int) -> list[str]:
    """Build ``count`` emails of about ``words`` words; a share gets one unsafe sentence."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        sentences: list[str] = [f"Hi {rng.choice(['Sam', 'Alex', 'Jordan', 'Priya', 'Chen'])},"]
        while sum(len(s.split()) for s in sentences) < words:
            sentences.append(rng.choice(SAFE_SENTENCES))
        if rng.random() < unsafe_share:
            sentences.insert(rng.randrange(1, len(sentences)), rng.choice(UNSAFE_SENTENCES))
        texts.append(" ".join(sentences))
    return texts


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print machine info, throughput and latency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=5000, help="number of texts (5000)")
    parser.add_argument("--words", type=int, default=150, help="words per text (150)")
    parser.add_argument("--unsafe-share", type=float, default=0.05, help="share with a hit (0.05)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; best is reported (3)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    print_machine()
    start = time.perf_counter()
    analyzer = LocalSafetyAnalyzer()
    print(f"lexicon load: {time.perf_counter() - start:.2f} s")

    texts = make_texts(args.texts, args.words, args.unsafe_share, args.seed)
    mean_words = statistics.fmean(len(t.split()) for t in texts)
    print(f"texts: {len(texts)}  mean words: {mean_words:.0f}  unsafe share: {args.unsafe_share}")

    for text in texts[:200]:  # warm-up
        analyzer.analyze(text)
    passes = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        for text in texts:
            analyzer.analyze(text)
        passes.append(time.perf_counter() - start)
    best = min(passes)

    latencies = []
    flagged = blocked = 0
    for text in texts:
        start = time.perf_counter()
        scores = analyzer.analyze(text)
        latencies.append((time.perf_counter() - start) * 1e6)
        top = max(scores.severities().values())
        flagged += top >= 4
        blocked += top >= 6
    cuts = statistics.quantiles(latencies, n=100)
    print(f"throughput: {len(texts) / best:,.0f} texts/s (best of {args.repeat}, one core)")
    print(f"latency per text: p50 {cuts[49]:.0f} us  p95 {cuts[94]:.0f} us  p99 {cuts[98]:.0f} us")
    print(f"scored >= 4 (review or block): {flagged}  scored >= 6 (block): {blocked}")


if __name__ == "__main__":
    main()
