# qa-worker's job-check driver: run inside the sandbox with the job assembled in the working
# directory (/work), as `python3 -c <this> <kind>`. Kinds: python (every module imports, then
# pytest runs the job's tests), c (the C and C++ sources compile and link together), node (every
# module loads). It prints one line per finding, "@@agentline " + JSON:
#   {"file", "line", "column", "severity", "check", "message", "related": [...], "kind"}
# and "@@agentline {"skipped": why}" when its tool is missing. Only this process prints those
# lines; the job's own code runs in child processes whose output is captured, never forwarded.
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.getcwd()
MODULE_SECONDS = 10
TEST_SECONDS = 60
BUILD_SECONDS = 60


def report(**finding):
    finding["message"] = str(finding.get("message", ""))[:4000]
    print("@@agentline " + json.dumps(finding), flush=True)


def job_files(*extensions):
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if name.endswith(extensions):
                found.append(os.path.relpath(os.path.join(folder, name), ROOT))
    return found


def relative(path):
    """A path inside the job, relative to its root; None for anything outside it."""
    if not path:
        return None
    full = os.path.realpath(path if os.path.isabs(path) else os.path.join(ROOT, path))
    if full.startswith(ROOT + os.sep) and os.path.exists(full):
        return os.path.relpath(full, ROOT)
    return None


def run(argv, seconds, env=None):
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=seconds, env=env, cwd=ROOT)
        return done.returncode, done.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return None, (e.stdout or b"").decode("utf-8", "replace")


# ---- python -------------------------------------------------------------------------------

IMPORT_CHILD = r"""
import importlib, json, sys, traceback
sys.path.insert(0, sys.argv[2])
try:
    importlib.import_module(sys.argv[1])
except BaseException as e:
    if isinstance(e, SystemExit) and e.code in (None, 0):
        sys.exit(0)
    frames = [(f.filename, f.lineno) for f in traceback.extract_tb(e.__traceback__)]
    if isinstance(e, SyntaxError) and e.filename:
        frames.append((e.filename, e.lineno or 0))
    out = {"type": type(e).__name__, "message": str(e), "frames": frames,
           "missing": getattr(e, "name", None) if isinstance(e, ImportError) else None,
           "from_path": getattr(e, "path", None) if isinstance(e, ImportError) else None}
    with open(sys.argv[3], "w") as f:
        json.dump(out, f)
    sys.exit(3)
"""


def module_name(path):
    parts = path[:-3].split(os.sep)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def check_python():
    files = job_files(".py")
    modules = {}
    for path in files:
        if path in ("setup.py", "conftest.py") or os.path.basename(path) == "conftest.py":
            continue
        name = module_name(path)
        if name:
            modules[name] = path
    job_modules = set(modules)
    failed = set()
    # One finding per place, however many modules' imports ran into it: "via" lists the modules
    # whose import failed there (they fail because of it, and are not where a fix goes).
    import_errors = {}
    scratch = tempfile.mkdtemp()
    for name, path in sorted(modules.items()):
        result = os.path.join(scratch, "result.json")
        if os.path.exists(result):
            os.remove(result)
        code, output = run([sys.executable, "-c", IMPORT_CHILD, name, ROOT, result], MODULE_SECONDS)
        if code is None:
            report(file=path, severity="error", check="imports", kind="import_timeout",
                   message="importing %s did not finish within %d s (code runs at import time?)" % (name, MODULE_SECONDS))
            failed.add(path)
            continue
        if code == 0:
            continue
        if not os.path.exists(result):
            report(file=path, severity="error", check="imports", kind="import_error",
                   message="importing %s failed (exit %s): %s" % (name, code, output.strip()[-800:]))
            failed.add(path)
            continue
        with open(result) as f:
            error = json.load(f)
        frames = [(relative(p), line) for p, line in error["frames"]]
        frames = [(p, line) for p, line in frames if p]
        where, line = frames[-1] if frames else (path, 0)
        missing = error.get("missing")
        message = "%s: %s" % (error["type"], error["message"])
        related = []
        from_file = relative(error.get("from_path"))
        if from_file and from_file != where:
            related.append(from_file)
        if error["type"] == "ModuleNotFoundError" and missing:
            top = missing.split(".")[0]
            provided = any(m == top or m.startswith(top + ".") for m in job_modules) or os.path.isdir(
                os.path.join(ROOT, top))
            if not provided:
                # Not a file of the job: a dependency the sandbox does not have. Reported, not failed.
                report(file=where, line=line, severity="warning", check="imports", kind="missing_dependency",
                       message="imports '%s', which is neither a file of the job nor installed where the job "
                               "checks run (declare it as a dependency, or use the standard library)" % missing)
                continue
            message += " (no file of the job provides it)"
        finding = import_errors.setdefault((where, line, message), {
            "file": where, "line": line, "severity": "error", "check": "imports", "kind": "import_error",
            "message": message, "related": related, "via": []})
        if path != where:
            finding["via"].append(path)
        failed.add(where)
        failed.add(path)
    for finding in import_errors.values():
        if not finding["via"]:
            del finding["via"]
        report(**finding)
    tests = [p for p in files if re.match(r"(test_.*|.*_test)\.py$", os.path.basename(p))]
    if not tests:
        return
    code, _ = run([sys.executable, "-c", "import pytest"], MODULE_SECONDS)
    if code != 0:
        report(skipped="pytest is not installed where the job checks run: the job's tests did not run")
        return
    plugin_dir = tempfile.mkdtemp()
    findings = os.path.join(plugin_dir, "findings.jsonl")
    with open(os.path.join(plugin_dir, "agentline_collect.py"), "w") as f:
        f.write(PYTEST_PLUGIN)
    env = dict(os.environ, PYTHONPATH=plugin_dir + os.pathsep + ROOT, AGENTLINE_FINDINGS=findings)
    code, output = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "agentline_collect",
                        "--rootdir", ROOT] + tests, TEST_SECONDS, env)
    if code is None:
        report(file=tests[0], severity="error", check="pytest", kind="test_timeout",
               message="the job's tests did not finish within %d s" % TEST_SECONDS, related=tests[1:])
        return
    reported = 0
    if os.path.exists(findings):
        with open(findings) as f:
            for line in f:
                item = json.loads(line)
                test_file = relative(item["nodeid"].split("::")[0]) or tests[0]
                if item["when"] == "collection" and test_file in failed:
                    reported += 1  # its import failed above, where the finding names the cause
                    continue
                crash_file, crash_line = relative(item.get("crash_path")), item.get("crash_line") or 0
                test_line = 0
                for p, l in item.get("entries", []):
                    if relative(p) == test_file:
                        test_line = l
                what = "%s failed%s: %s" % (item["nodeid"], "" if item["when"] == "call" else " in " + item["when"],
                                            item.get("crash_message", "").strip())
                if crash_file and crash_file != test_file:
                    # The test broke inside the code it tests: the code is named, the test is related.
                    report(file=crash_file, line=crash_line, severity="error", check="pytest", kind="test_failed",
                           message=what, related=[test_file])
                else:
                    report(file=test_file, line=crash_line or test_line, severity="error", check="pytest",
                           kind="test_failed", message=what)
                reported += 1
    if code not in (0, 5) and reported == 0:
        # Exit 5: no tests collected, which is not a failure of the job.
        report(file=tests[0], severity="error", check="pytest", kind="test_failed",
               message="pytest failed (exit %s): %s" % (code, output.strip()[-1500:]), related=tests[1:])


PYTEST_PLUGIN = r'''
import json, os


def _record(report, when):
    crash = getattr(report.longrepr, "reprcrash", None)
    entries = []
    tb = getattr(report.longrepr, "reprtraceback", None)
    for e in getattr(tb, "reprentries", None) or []:
        loc = getattr(e, "reprfileloc", None)
        if loc is not None:
            entries.append((loc.path, loc.lineno))
    item = {"nodeid": report.nodeid, "when": when,
            "crash_path": getattr(crash, "path", None), "crash_line": getattr(crash, "lineno", 0),
            "crash_message": getattr(crash, "message", None) or str(report.longrepr)[-1500:],
            "entries": entries}
    with open(os.environ["AGENTLINE_FINDINGS"], "a") as f:
        f.write(json.dumps(item) + "\n")


def pytest_runtest_logreport(report):
    if report.failed:
        _record(report, report.when)


def pytest_collectreport(report):
    if report.failed:
        _record(report, "collection")
'''


# ---- c and c++ ----------------------------------------------------------------------------

GCC_LINE = re.compile(r"^(.*?):(\d+):(?:(\d+):)? (fatal error|error|warning): (.*)$")
LD_LINE = re.compile(r"^(.*?):(?:(\d+)|\(\.\w+[^)]*\)): (undefined reference to .*|multiple definition of .*)$")
MAIN = re.compile(r"\bint\s+main\s*\(")


def check_c():
    c = job_files(".c")
    cpp = job_files(".cc", ".cpp", ".cxx")
    if not c and not cpp:
        return
    for tool, sources in (("gcc", c), ("g++", cpp)):
        if sources and not shutil.which(tool):
            report(skipped="%s is not installed where the job checks run: the C/C++ sources were not built" % tool)
            return
    include = sorted({os.path.dirname(p) or "." for p in job_files(".h", ".hpp", ".hh")} | {"."})
    flags = ["-g", "-fdiagnostics-plain-output"] + ["-I" + d for d in include]
    objects = tempfile.mkdtemp()
    built = []
    broken = False
    for n, path in enumerate(c + cpp):
        tool, std = ("gcc", ["-std=gnu17"]) if path.endswith(".c") else ("g++", ["-std=c++20"])
        obj = os.path.join(objects, "%d.o" % n)
        code, output = run([tool, "-c"] + std + flags + [path, "-o", obj], BUILD_SECONDS)
        for line in output.splitlines():
            m = GCC_LINE.match(line)
            if m and m.group(4) != "warning":
                report(file=relative(m.group(1)) or path, line=int(m.group(2)), column=int(m.group(3) or 0),
                       severity="error", check="compile", kind="compile_error", message=m.group(5))
        if code != 0:
            broken = True
            if not any(GCC_LINE.match(line) for line in output.splitlines()):
                report(file=path, severity="error", check="compile", kind="compile_error",
                       message="the compiler failed: %s" % output.strip()[-1500:])
        else:
            built.append(obj)
    if broken or not built:
        return
    with_main = [p for p in c + cpp if MAIN.search(open(p, errors="replace").read())]
    linker = "g++" if cpp else "gcc"
    if with_main:
        argv = [linker, "-g"] + built + ["-o", os.path.join(objects, "a.out"), "-lm"]
    else:
        # A library: linked as a shared object that must not leave anything undefined.
        argv = [linker, "-shared", "-Wl,--no-undefined", "-g"] + built + ["-o", os.path.join(objects, "lib.so"), "-lm"]
    code, output = run(argv, BUILD_SECONDS)
    if code == 0:
        return
    found = False
    for line in output.splitlines():
        m = LD_LINE.match(line.strip())
        if m:
            found = True
            report(file=relative(m.group(1)) or (with_main[0] if with_main else ""), line=int(m.group(2) or 0),
                   severity="error", check="link", kind="link_error", message=m.group(3))
    if not found:
        report(file=with_main[0] if with_main else "", severity="error", check="link", kind="link_error",
               message="linking failed: %s" % output.strip()[-1500:])


# ---- node ---------------------------------------------------------------------------------

NODE_CHILD = r"""
const { pathToFileURL } = require('url');
import(pathToFileURL(process.argv[1]).href).then(() => process.exit(0), (e) => {
  const message = String(e && e.message || e);
  const stack = String(e && e.stack || '');
  require('fs').writeFileSync(process.argv[2], JSON.stringify({message, stack, code: e && e.code || ''}));
  process.exit(3);
});
"""
NODE_FRAME = re.compile(r"(?:file://)?(/[^\s():]+):(\d+)(?::(\d+))?")


def check_node():
    files = job_files(".js", ".mjs", ".cjs")
    if not files:
        return
    if not shutil.which("node"):
        report(skipped="node is not installed where the job checks run: the JavaScript modules were not loaded")
        return
    scratch = tempfile.mkdtemp()
    for path in files:
        result = os.path.join(scratch, "result.json")
        if os.path.exists(result):
            os.remove(result)
        code, output = run(["node", "-e", NODE_CHILD, os.path.join(ROOT, path), result], MODULE_SECONDS)
        if code is None:
            report(file=path, severity="error", check="load", kind="import_timeout",
                   message="loading %s did not finish within %d s" % (path, MODULE_SECONDS))
            continue
        if code == 0:
            continue
        if not os.path.exists(result):
            report(file=path, severity="error", check="load", kind="import_error",
                   message="loading %s failed (exit %s): %s" % (path, code, output.strip()[-800:]))
            continue
        with open(result) as f:
            error = json.load(f)
        where, line = path, 0
        # "Require stack: - /work/a.js" and "imported from /work/a.js" name the importing file.
        m = re.search(r"(?:Require stack:\s*- |imported from )(\S+)", error["message"] + "\n" + error["stack"])
        if m and relative(m.group(1)):
            where = relative(m.group(1))
        else:
            for frame in NODE_FRAME.finditer(error["stack"]):
                if relative(frame.group(1)):
                    where, line = relative(frame.group(1)), int(frame.group(2))
                    break
        first = error["message"].splitlines()[0] if error["message"] else "loading failed"
        report(file=where, line=line, severity="error", check="load", kind="import_error", message=first)


if __name__ == "__main__":
    {"python": check_python, "c": check_c, "node": check_node}[sys.argv[1]]()
