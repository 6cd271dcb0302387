"""Build the compiled hot path (openraft_fast/_core/*.pyx).

Environment switches:
  OPENRAFT_FAST_DEBUG=1     debug build: line tracing, bounds/wraparound checks, C and Cython
                            asserts (the engine's invariant checks), -O0 -g.
  OPENRAFT_FAST_ANNOTATE=1  write Cython's annotated HTML next to each .pyx.
  OPENRAFT_FAST_SYMBOLS=1   a release build that keeps its symbols (-O3 -g, not stripped), so
                            perf and `py-spy --native` name the compiled functions.
  OPENRAFT_FAST_MICROBENCH=1  also build the internal `microbench` module (benches/ use it).
                            In-place and editable builds always build it; wheels leave it out.

Release builds are stripped (-g0, linked with -s). The build never yields a pure-Python
package: with no .pyx sources found it stops with an error, and a failed compile fails it.
"""
import glob
import os
import shutil
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


DEBUG = _flag("OPENRAFT_FAST_DEBUG")
ANNOTATE = _flag("OPENRAFT_FAST_ANNOTATE")
SYMBOLS = _flag("OPENRAFT_FAST_SYMBOLS")
# Dev builds (in place, editable, develop) keep the internal microbench module for benches/;
# wheels and sdist installs do not ship it.
_DEV_BUILD = any(a in ("--inplace", "-i", "editable_wheel", "develop") for a in sys.argv[1:])
MICROBENCH = _flag("OPENRAFT_FAST_MICROBENCH") or _DEV_BUILD

directives = {
    "language_level": 3,
    "embedsignature": True,
    # Plain C methods instead of CyFunctions: ~12 ns less per call from Python.
    "binding": False,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "linetrace": DEBUG,
    "profile": DEBUG,
}

if DEBUG:
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1"), ("OPENRAFT_FAST_DEBUG", "1")]
    undef = ["NDEBUG"]
    cflags = ["-O0", "-g3"]
    ldflags = []
else:
    # Cython `assert` statements are our invariant checks: compiled out of release builds.
    macros = [("CYTHON_WITHOUT_ASSERTIONS", "1"), ("NDEBUG", "1")]
    undef = []
    # Stripped: no debug info in what users install (about 1.7 MB instead of 9.8 MB).
    cflags = ["-O3", "-g" if SYMBOLS else "-g0"]
    ldflags = ["-s"] if sys.platform.startswith("linux") and not SYMBOLS else []


def c_sources_for(pyx):
    """C helpers a module names in a `# csrc: a.c b.c` line at its top."""
    with open(pyx, encoding="utf-8") as f:
        for line in f.readlines()[:10]:
            if line.startswith("# csrc:"):
                return [os.path.join("csrc", name) for name in line.split(":", 1)[1].split()]
    return []


def generate_sources():
    """codec_bodies.pxi (the codec's message bodies, included by codec.pyx) from
    codec_schema.py: a build product, written before cythonize (only when it changes)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
    try:
        import gen_codec
    finally:
        del sys.path[0]
    gen_codec.write_pxi()


generate_sources()


# A module's `include`d .pxi files (engine.pyx: engine_*.pxi) are not extensions of their own:
# cythonize follows the includes and recompiles the module when one of them changes.
PYX = sorted(glob.glob("openraft_fast/_core/*.pyx"))
REQUIRED = ["types", "quorum", "inflight", "progress", "tracker", "log", "messages", "commands", "record",
            "engine", "walrec", "codec", "events", "writes", "applier", "peers", "inbox", "executor"]
_missing = [m for m in REQUIRED if f"openraft_fast/_core/{m}.pyx" not in PYX]
if _missing:
    sys.exit("error: openraft_fast/_core/{%s}.pyx not found (run from the source tree or a complete "
             "sdist): refusing to build a package without its compiled core" % ",".join(_missing))

extensions = []
for pyx in PYX:
    name = pyx[:-4].replace(os.sep, ".")
    if name.endswith(".microbench") and not MICROBENCH:
        continue
    extensions.append(
        Extension(
            name,
            [pyx] + c_sources_for(pyx),
            include_dirs=["csrc"],
            define_macros=macros,
            undef_macros=undef,
            extra_compile_args=cflags,
            extra_link_args=ldflags,
        )
    )

class AtomicInplaceBuildExt(build_ext):
    """Replace in-place extensions atomically: overwriting a .so that a running process has
    mapped can crash it; a rename leaves that process on the old file."""

    def copy_file(self, infile, outfile, *args, **kwargs):
        if self.inplace and outfile.endswith((".so", ".pyd")):
            tmp = outfile + ".tmp"
            shutil.copyfile(infile, tmp)
            shutil.copymode(infile, tmp)
            os.replace(tmp, outfile)
            return outfile, True
        return super().copy_file(infile, outfile, *args, **kwargs)


setup(
    cmdclass={"build_ext": AtomicInplaceBuildExt},
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=ANNOTATE,
        nthreads=int(os.environ.get("OPENRAFT_FAST_CYTHON_JOBS", "0")) or (os.cpu_count() or 1),
        # Generated C is kept per build mode, so switching debug <-> release never reuses stale C.
        build_dir=os.path.join("build", "cython-debug" if DEBUG else "cython-release"),
        force=ANNOTATE or bool(os.environ.get("OPENRAFT_FAST_FORCE")),
    ),
    zip_safe=False,
)
