#!/usr/bin/env python3
"""Check qjit's forward pass, eval protocol and RTN quantizer against the
independent NumPy reference in tests/reference/llama_ref.py (stories260K)."""
# ctest-labels: slow
#
# Needs env QJIT (qjit binary), QJ_SHARED (shared data dir), QJ_TEST_TMP
# (scratch dir; defaults to the system temp dir) and numpy; exits 77 (skip)
# when any of them is missing. Cases (each compared with the reference NLL):
#   fp32 .bin model, HF dir from `qjit convert`, package from `qjit compile`,
#   quantized plans through `qjit eval --plan`, an int4-g32 package,
#   v1-header and untied-classifier checkpoints written by the reference,
#   and windowing variants (--ctx 128, a 1000-token stream).
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

FP32_ABS_TOL = 1e-4     # |nll_qjit - nll_ref| for fp32 (C float32 vs NumPy float64)
QUANT_REL_TOL = 1e-3    # relative, for RTN-quantized plans (allows a few tie-flipped codes)
QUANT_PLANS = ["int8-pc", "int8-g32", "int4-g32", "int4-g32-sym", "int3-g64", "int2-g32"]
N_TOKENS = 4000

# The reference's matrices are small (511 x 64): a single BLAS thread is
# fastest and does not collapse when the machine is busy (must precede numpy).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)


def main():
    qjit = os.environ.get("QJIT")
    shared = os.environ.get("QJ_SHARED")
    if not qjit or not shared:
        skip("QJIT and QJ_SHARED must be set")
    try:
        import numpy
    except ImportError:
        skip("numpy is not installed (python3 -m pip install numpy)")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
    import llama_ref as ref

    model_bin = os.path.join(shared, "models", "stories260K", "stories260K.bin")
    tok_bin = os.path.join(shared, "models", "stories260K", "tok512.bin")
    text = os.path.join(shared, "data", "tinystories", "valid_prefix.txt")
    for p in (model_bin, tok_bin, text):
        if not os.path.exists(p):
            skip("shared file missing: " + p)
    if not os.access(qjit, os.X_OK):
        print("FAIL: QJIT=%s is not an executable" % qjit)
        return 1

    base_tmp = os.environ.get("QJ_TEST_TMP") or tempfile.gettempdir()
    os.makedirs(base_tmp, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="refnll-", dir=base_tmp)
    failures = []
    t_start = time.time()
    t_qjit = [0.0]

    def run(args, what):
        """Run qjit; return stdout, or None (recording a failure)."""
        cmd = [qjit] + args
        t = time.time()
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, timeout=600)
            t_qjit[0] += time.time() - t
        except subprocess.TimeoutExpired:
            failures.append("%s: timed out: %s" % (what, " ".join(cmd)))
            return None
        if r.returncode != 0:
            failures.append("%s: exit %d: %s\n    stderr: %s" % (what, r.returncode, " ".join(cmd),
                                                                 r.stderr.strip()[-800:]))
            return None
        return r.stdout

    def parse_json(out, what):
        out = out.strip()
        try:
            return json.loads(out)
        except ValueError:
            pass
        for line in reversed(out.splitlines()):       # a JSON line after other output
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    break
        i, j = out.find("{"), out.rfind("}")
        if 0 <= i < j:
            try:
                return json.loads(out[i:j + 1])
            except ValueError:
                pass
        failures.append("%s: output is not a JSON object: %r" % (what, out[:300]))
        return None

    def tokenize(n, what):
        out = run(["tokenize", "--tokenizer", tok_bin, "--text", text, "--max-tokens", str(n)], what)
        if out is None:
            return None
        try:
            ids = [int(t) for t in out.split()]
        except ValueError:
            failures.append("%s: output is not space-separated ints: %r" % (what, out[:200]))
            return None
        if len(ids) != n:
            failures.append("%s: expected %d ids, got %d" % (what, n, len(ids)))
            return None
        if ids and ids[0] == ref.BOS:
            failures.append("%s: the id stream starts with BOS (the protocol adds it per window)" % what)
        path = os.path.join(tmp, "ids%d.txt" % n)
        with open(path, "w") as f:
            f.write(" ".join(map(str, ids)) + "\n")
        return ids, path

    # ---- tokens
    tk = tokenize(N_TOKENS, "tokenize --max-tokens %d" % N_TOKENS)
    if tk is None:
        print("FAIL: could not tokenize\n  " + "\n  ".join(failures))
        print("(temp files kept in %s)" % tmp)
        return 1
    ids, ids_file = tk
    tk1000 = tokenize(1000, "tokenize --max-tokens 1000")

    # ---- reference
    t0 = time.time()
    model = ref.load_checkpoint(model_bin)
    refs = {}

    def ref_nll(plan, ctx=512, stream=None):
        key = (plan, ctx, len(ids) if stream is None else len(stream))
        if key not in refs:
            m = ref.quantize_model_plan(model, plan)
            refs[key] = ref.forward_nll(m, ids if stream is None else stream, ctx)
        return refs[key]

    ref_nll("fp32")
    for plan in QUANT_PLANS:
        ref_nll(plan)
    t_ref_main = time.time() - t0

    # ---- qjit cases: (label, eval args, plan of the reference, ctx, stream, n)
    rows = []

    def compare(label, eval_args, plan, ctx=512, stream=None, stream_file=None):
        stream = ids if stream is None else stream
        stream_file = ids_file if stream_file is None else stream_file
        r_nll, r_n = ref_nll(plan, ctx, stream)
        args = ["eval"] + eval_args + ["--tokens", stream_file, "--json"]
        if ctx != 512:
            args += ["--ctx", str(ctx)]
        out = run(args, label)
        row = dict(label=label, plan=plan, ctx=ctx, n=r_n, ref=r_nll, qjit=None, ok=False, note="")
        rows.append(row)
        if out is None:
            row["note"] = "qjit failed"
            return
        js = parse_json(out, label)
        if js is None:
            row["note"] = "bad JSON"
            return
        try:
            q_nll = float(js["nll"])
            q_ppl = float(js["ppl"])
            q_n = int(js["tokens"])
        except (KeyError, TypeError, ValueError) as e:
            failures.append("%s: JSON lacks nll/ppl/tokens (%s): %r" % (label, e, js))
            row["note"] = "bad JSON"
            return
        row["qjit"] = q_nll
        problems = []
        if q_n != r_n:
            problems.append("tokens %d != %d" % (q_n, r_n))
        if not (math.isfinite(q_nll) and abs(q_ppl - math.exp(q_nll)) <= 1e-4 * math.exp(q_nll)):
            problems.append("ppl %.6g is not exp(nll %.6g)" % (q_ppl, q_nll))
        diff = abs(q_nll - r_nll)
        if plan.startswith("fp32"):
            tol, tol_txt = FP32_ABS_TOL, "abs %.0e" % FP32_ABS_TOL
        else:
            tol, tol_txt = QUANT_REL_TOL * abs(r_nll), "rel %.0e" % QUANT_REL_TOL
        if not diff <= tol:
            problems.append("|nll_qjit - nll_ref| = %.3g > %s (nll_qjit %.6f, nll_ref %.6f)"
                            % (diff, tol_txt, q_nll, r_nll))
        if problems:
            failures.append("%s: %s" % (label, "; ".join(problems)))
            row["note"] = "; ".join(problems)
        else:
            row["ok"] = True

    compare("fp32 .bin", ["--model", model_bin, "--plan", "fp32"], "fp32")

    hf_dir = os.path.join(tmp, "hf")
    if run(["convert", "--model", model_bin, "-o", hf_dir, "--dtype", "f32"], "convert (HF f32)") is not None:
        compare("fp32 HF dir", ["--model", hf_dir, "--plan", "fp32"], "fp32")
    else:
        rows.append(dict(label="fp32 HF dir", plan="fp32", ctx=512, n=len(ids), ref=ref_nll("fp32")[0],
                         qjit=None, ok=False, note="convert failed"))

    for plan, name in (("fp32", "fp32.qjp"), ("int4-g32", "int4-g32.qjp")):
        pkg = os.path.join(tmp, name)
        label = "%s package" % plan
        if run(["compile", "--model", model_bin, "--plan", plan, "-o", pkg], "compile --plan " + plan) is not None:
            compare(label, ["--model", pkg], plan)
        else:
            rows.append(dict(label=label, plan=plan, ctx=512, n=len(ids), ref=ref_nll(plan)[0],
                             qjit=None, ok=False, note="compile failed"))

    for plan in QUANT_PLANS:
        compare(plan + " .bin", ["--model", model_bin, "--plan", plan], plan)

    # loader variants written by the reference: the version-1 header, and a
    # legacy file with an untied classifier (negative vocab_size; the
    # classifier is a perturbed copy of the embedding so that tying would show)
    v1_path = os.path.join(tmp, "stories260K_v1.bin")
    ref.write_checkpoint_v1(model, v1_path)
    compare("fp32 v1 header", ["--model", v1_path, "--plan", "fp32"], "fp32")
    rng = numpy.random.default_rng(1234)
    untied = dict(model)
    untied.pop("_f64", None)
    untied["shared_classifier"] = False
    untied["wcls"] = (model["tok_emb"] * 0.8 +
                      0.02 * rng.standard_normal(model["tok_emb"].shape)).astype(numpy.float32)
    untied_path = os.path.join(tmp, "stories260K_untied.bin")
    ref.write_checkpoint_legacy(untied, untied_path)
    untied = ref.load_checkpoint(untied_path)
    refs[("fp32-untied", 512, len(ids))] = ref.forward_nll(untied, ids, 512)
    compare("fp32 untied cls", ["--model", untied_path, "--plan", "fp32"], "fp32-untied")
    refs[("int4-g32-untied", 512, len(ids))] = ref.forward_nll(ref.quantize_model_plan(untied, "int4-g32"),
                                                               ids, 512)
    compare("int4-g32 untied cls", ["--model", untied_path, "--plan", "int4-g32"], "int4-g32-untied")

    # windowing protocol: shorter windows, and a stream whose last window is short
    compare("fp32 --ctx 128", ["--model", model_bin, "--plan", "fp32"], "fp32", ctx=128)
    if tk1000 is not None:
        compare("fp32 1000 ids", ["--model", model_bin, "--plan", "fp32"], "fp32",
                stream=tk1000[0], stream_file=tk1000[1])

    # ---- sanity of the quantization itself (reference and qjit numbers)
    def q_of(label):
        for r in rows:
            if r["label"] == label:
                return r["qjit"]
        return None

    fp_ref = ref_nll("fp32")[0]
    fp_q = q_of("fp32 .bin")
    sanity = []
    for src, fp in (("ref", fp_ref), ("qjit", fp_q)):
        if fp is None:
            continue
        for plan in ("int8-pc", "int8-g32"):
            v = ref_nll(plan)[0] if src == "ref" else q_of(plan + " .bin")
            if v is None:
                continue
            rel = abs(v - fp) / fp
            ok = rel < 0.005
            sanity.append("%-4s %-9s vs fp32: %+.4f%%  (must be < 0.5%%)  %s" % (src, plan, 100 * (v - fp) / fp,
                                                                            "ok" if ok else "FAIL"))
            if not ok:
                failures.append("%s: %s NLL %.6f differs from fp32 %.6f by %.3f%% (>= 0.5%%)"
                                % (src, plan, v, fp, 100 * rel))
        v = ref_nll("int4-g32")[0] if src == "ref" else q_of("int4-g32 .bin")
        if v is not None:
            ok = fp < v < 1.15 * fp
            sanity.append("%-4s %-9s vs fp32: %+.4f%%  (must be in (0, 15%%))  %s" % (src, "int4-g32",
                                                                                 100 * (v - fp) / fp,
                                                                                 "ok" if ok else "FAIL"))
            if not ok:
                failures.append("%s: int4-g32 NLL %.6f not in (fp32 %.6f, +15%%)" % (src, v, fp))

    # ---- report
    print("reference: stories260K, %d ids, NumPy float64; main reference runs took %.2fs"
          % (len(ids), t_ref_main))
    print("%-20s %4s %5s %11s %11s %10s %9s  %s" % ("case", "ctx", "ids", "nll_ref", "nll_qjit", "diff",
                                                   "ppl_ref", "status"))
    for r in rows:
        q = "%11.6f" % r["qjit"] if r["qjit"] is not None else "%11s" % "-"
        d = "%+10.2e" % (r["qjit"] - r["ref"]) if r["qjit"] is not None else "%10s" % "-"
        print("%-20s %4d %5d %11.6f %s %s %9.4f  %s" % (r["label"], r["ctx"], r["n"], r["ref"], q, d,
                                                      math.exp(r["ref"]),
                                                      "ok" if r["ok"] else "FAIL: " + r["note"]))
    for s in sanity:
        print(s)
    t_total = time.time() - t_start
    print("time: total %.1fs = qjit commands %.1fs + reference/other %.1fs"
          % (t_total, t_qjit[0], t_total - t_qjit[0]))
    if failures:
        print("\nFAILED (%d):" % len(failures))
        for f in failures:
            print("  - " + f)
        print("(temp files kept in %s)" % tmp)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
