"""The C++ `ctxmem` CLI's evaluation verbs as a user runs them, on the bundled model and a small
slice of the shipped book: `eval-ppl` writes its table (JSON, markdown) and a PNG, resumes a
finished table without recomputing, refuses to mix tables made with another eval length, and
still succeeds (with a warning) when the plot cannot be drawn. No servers."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import harness

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class CliEvalPplTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.binary = harness.need_env("CTXMEM_CLI")
        cls.tmp = tempfile.mkdtemp(prefix="ctxmem-it-cli-eval-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.text = os.path.join(cls.tmp, "book.txt")
        with open(cls.text, "w", encoding="utf-8") as f:
            f.write(harness.book_text(200, 2000))

    def eval_ppl(self, name, *extra, eval_len=96, check=True):
        args = [self.binary, "eval-ppl", "--text", self.text, "--eval-len", str(eval_len),
                "--chunk", "32",
                "--memory", "16", "--pruners", "streaming_llm,tova", "--memory-types", "FM,IMDC",
                "--threads", "1", "--out", self.tmp, "--name", name, *extra]
        p = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def load(self, name):
        with open(os.path.join(self.tmp, name + ".json"), encoding="utf-8") as f:
            return json.load(f)

    def test_table_plot_and_resume(self):
        self.eval_ppl("t")
        table = self.load("t")
        rows = table["rows"]
        # no_compress (the reference) + 2 pruners x 2 memory types, all finished.
        self.assertEqual(len(rows), 5)
        self.assertFalse(any(r.get("pending") for r in rows))
        reference = [r for r in rows if r["reference"]]
        self.assertEqual(len(reference), 1)
        self.assertEqual(reference[0]["config"]["pruner"], "no_compress")
        for r in rows:
            self.assertEqual(r["error"], "")
            self.assertGreater(r["ppl"], 1.0)
            self.assertEqual(r["n_scored"], 95)  # every position but the first
            self.assertAlmostEqual(r["ppl_vs_reference"], r["ppl"] / reference[0]["ppl"], 6)
        with open(os.path.join(self.tmp, "t.md"), encoding="utf-8") as f:
            md = f.read()
        self.assertIn("streaming_llm", md)
        self.assertIn("tova", md)
        with open(os.path.join(self.tmp, "t.png"), "rb") as f:
            self.assertEqual(f.read(8), PNG_MAGIC)

        # A rerun resumes every setting: same numbers, nothing recomputed.
        again = self.eval_ppl("t")
        self.assertIn("resuming", again.stderr)
        resumed = self.load("t")["rows"]
        self.assertTrue(all(r["resumed"] for r in resumed))
        self.assertEqual([r["ppl"] for r in resumed], [r["ppl"] for r in rows])

        # Another eval length would mix two tables: refused, file untouched.
        mixed = self.eval_ppl("t", eval_len=64, check=False)
        self.assertEqual(mixed.returncode, 1)
        self.assertIn("was made with eval_len=96", mixed.stderr)
        self.assertEqual(self.load("t")["eval_len"], 96)

    def test_plot_failure_is_a_warning(self):
        p = self.eval_ppl("noplot", "--python", "/nonexistent/python3")
        self.assertIn("warning: plot not drawn", p.stderr)
        self.assertIn("tools/plot_eval_ppl.py", p.stderr)
        self.assertEqual(len(self.load("noplot")["rows"]), 5)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "noplot.png")))


class CliProbeTest(unittest.TestCase):
    """`ctxmem probe` through the per-layer score hooks of Compress (usage on): the JSON has one
    run per pruner with every layer's series, and the plots are PNGs."""

    def test_probe_json_and_plots(self):
        binary = harness.need_env("CTXMEM_CLI")
        tmp = tempfile.mkdtemp(prefix="ctxmem-it-cli-probe-")
        self.addCleanup(shutil.rmtree, tmp, True)
        text = os.path.join(tmp, "book.txt")
        with open(text, "w", encoding="utf-8") as f:
            f.write(harness.book_text(200, 2000))
        out = os.path.join(tmp, "out")
        p = subprocess.run([binary, "probe", "--text", text, "--pruner", "streaming_llm,tova",
                            "--chunk", "32", "--memory", "16", "--max-tokens", "128",
                            "--threads", "1", "--out", out],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, "probe.json"), encoding="utf-8") as f:
            data = json.load(f)
        self.assertEqual(len(data["runs"]), 2)
        for run in data["runs"]:
            probe = run["probe"]
            self.assertEqual(probe["n_steps"], 4)  # 128 tokens in chunks of 32
            self.assertEqual(probe["chunk_begin"], [0, 32, 64, 96, 128])
            usage = probe["mean"]["usage_score"]
            self.assertIsNone(usage[0])  # no memory before the first chunk
            self.assertTrue(all(0 < u <= 1 for u in usage[1:]), usage)
        pngs = [n for n in os.listdir(out) if n.endswith(".png")]
        self.assertGreaterEqual(len(pngs), 2, pngs)
        for name in pngs:
            with open(os.path.join(out, name), "rb") as f:
                self.assertEqual(f.read(8), PNG_MAGIC, name)


if __name__ == "__main__":
    unittest.main()
