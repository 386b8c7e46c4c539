"""Build script for the C extension ``pyconv._conv``.

Metadata lives in pyproject.toml; this file only describes the extension.
Environment switches (for development, never needed by users):
  PYCONV_SANITIZE=1  build with AddressSanitizer + UBSan (see tools/ROBUSTNESS.md)
  PYCONV_DEBUG=1     -O0 -g with asserts enabled
"""
import glob
import os

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class build_ext_and_copy(build_ext):
    """Builds as usual, then also puts the extension beside the sources.

    ``pip install . && python -m pyconv demo``, run from a checkout, imports
    the ``pyconv`` in the current directory (``-m`` puts it first on
    sys.path), not the installed one; without its compiled ``_conv`` that
    import would fail. pip builds in the checkout, so the copy lands there
    (git-ignored). ``build_ext --inplace`` needs no copy.
    """

    def run(self):
        super().run()
        if self.inplace:
            return
        for ext in self.extensions:
            built = self.get_ext_fullpath(ext.name)
            self.inplace = True
            try:
                beside_sources = self.get_ext_fullpath(ext.name)
            finally:
                self.inplace = False
            if os.path.isdir(os.path.dirname(beside_sources)) and os.access(
                    os.path.dirname(beside_sources), os.W_OK):
                self.copy_file(built, beside_sources)

sources = sorted(glob.glob("csrc/*.c")) + sorted(glob.glob("csrc/ukernels/*.c"))
# headers and kernel templates: a change to any of them rebuilds the extension
depends = sorted(glob.glob("csrc/*.h") + glob.glob("csrc/ukernels/*.h")
                 + glob.glob("csrc/ukernels/*.inc"))
compile_args = ["-std=c11", "-Wall", "-Wextra", "-pthread", "-fvisibility=hidden"]
link_args = ["-pthread"]
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_22_API_VERSION")]

if os.environ.get("PYCONV_DEBUG") or os.environ.get("PYCONV_SANITIZE"):
    compile_args += ["-O1", "-g", "-fno-omit-frame-pointer", "-UNDEBUG"]
else:
    compile_args += ["-O3"]
    macros.append(("NDEBUG", "1"))
if os.environ.get("PYCONV_SANITIZE"):
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    compile_args += san
    link_args += san

setup(
    cmdclass={"build_ext": build_ext_and_copy},
    ext_modules=[
        Extension(
            "pyconv._conv",
            sources=sources,
            depends=depends,
            libraries=["m"],  # fma()/fmaf() of the portable kernel
            include_dirs=[np.get_include(), "csrc"],
            define_macros=macros,
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
    ]
)
