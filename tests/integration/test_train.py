"""`ctxmem train` as a user runs it, on the tiny random llama of tests/data/tiny (bytes as ids):
a run killed with SIGKILL mid-training resumes from its last checkpoint with --resume and ends
with the same weights, bit for bit, as a run that was never interrupted; the run writes its
manifest, curves (JSON + PNG) and a perceiver file the eval tools load. No servers."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = 300


def write_books(root):
    for split, n in (("train", 3), ("validation", 1)):
        os.makedirs(os.path.join(root, split))
        for b in range(n):
            with open(os.path.join(root, split, "book%d.txt" % b), "w", encoding="utf-8") as f:
                f.write(harness.book_text(100 + 150 * b + (400 if split == "validation" else 0),
                                          3000))


class TrainKillResumeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.binary = harness.need_env("CTXMEM_CLI")
        src = harness.need_env("CTXMEM_SOURCE_DIR")
        cls.model = os.path.join(src, "tests", "data", "tiny", "llama")
        cls.tmp = tempfile.mkdtemp(prefix="ctxmem-it-train-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.data = os.path.join(cls.tmp, "books")
        write_books(cls.data)

    def args(self, out, *extra):
        return [self.binary, "train", "--model", self.model, "--data", self.data, "--out", out,
                "--method", "perceiver", "--objective", "next_kl", "--steps", str(STEPS),
                "--chunk", "16", "--memory", "4", "--sinks", "2", "--chunks-per-window", "3",
                "--query-len", "4", "--d-query", "8", "--lr", "0.01", "--warmup", "5",
                "--batch", "1", "--accum", "2", "--seed", "3", "--checkpoint-every", "1",
                "--eval-every", "100", "--val-windows", "1", "--no-eval-ppl", "--threads", "1",
                "--name", "tiny", *extra]

    def test_kill_9_then_resume_gives_the_uninterrupted_weights(self):
        whole = os.path.join(self.tmp, "whole")
        p = subprocess.run(self.args(whole), capture_output=True, text=True, timeout=900)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("ETA", p.stderr)  # the progress bar
        with open(os.path.join(whole, "tiny.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        self.assertEqual(manifest["steps"], STEPS)
        self.assertEqual(len(manifest["sha256"]), 64)
        self.assertIn("ctxmem", manifest["command"])
        with open(os.path.join(whole, "curves.png"), "rb") as f:
            self.assertEqual(f.read(8), PNG_MAGIC)

        killed = os.path.join(self.tmp, "killed")
        proc = subprocess.Popen(self.args(killed), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        state = os.path.join(killed, "checkpoint", "state.json")
        step = 0
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            try:
                with open(state, encoding="utf-8") as f:
                    step = json.load(f)["step"]
            except (OSError, ValueError):
                step = 0
            if step >= 5:
                break
            time.sleep(0.01)
        self.assertIsNone(proc.poll(), "training ended before it could be killed")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        self.assertLess(step, STEPS)
        self.assertFalse(os.path.exists(os.path.join(killed, "tiny.safetensors")))

        r = subprocess.run(self.args(killed, "--resume"), capture_output=True, text=True,
                           timeout=900)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(whole, "tiny.safetensors"), "rb") as a, \
                open(os.path.join(killed, "tiny.safetensors"), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_untrainable_method_is_a_clear_error(self):
        out = os.path.join(self.tmp, "fuser")
        args = self.args(out)
        args[args.index("perceiver")] = "no_such_method"
        p = subprocess.run(args, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no_such_method", p.stderr)
        self.assertIn("llm_fuser", p.stderr)  # the message lists the trainable methods


if __name__ == "__main__":
    unittest.main()
