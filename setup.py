"""`pip install .` from the source tree (docs/PYTHON.md): runs `make lib`,
then packages python/hmt with the built libhmt.so.N inside it, like `make
wheel`. One source for the metadata: python/pyproject.toml's [project] table,
read here; the version is python/hmt/_version.py's (= include/hmt/version.h).
setuptools' own build files go under the make build folder ($HMT_BUILD, else
build/), in pip/."""
import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution
try:
    from setuptools.command.bdist_wheel import bdist_wheel  # setuptools >= 70.1
except ImportError:
    from wheel.bdist_wheel import bdist_wheel  # Debian 12: python3-wheel

try:
    import tomllib
except ImportError:  # Python < 3.11
    from setuptools.extern import tomli as tomllib

ROOT = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("HMT_BUILD", "build")
with open(os.path.join(ROOT, "python", "pyproject.toml"), "rb") as f:
    META = tomllib.load(f)["project"]
with open(os.path.join(ROOT, "python", "hmt", "_version.py")) as f:
    _text = f.read()
VERSION = re.search(r'^__version__ = "(.*)"$', _text, re.M).group(1)
ABI = re.search(r"^ABI_VERSION = (\d+)$", _text, re.M).group(1)


class build_py_with_lib(build_py):
    """Build libhmt with make and put libhmt.so.N next to the package."""

    def run(self):
        super().run()
        subprocess.check_call(["make", "--no-print-directory", f"B={BUILD}", "lib"], cwd=ROOT)
        soname = f"libhmt.so.{ABI}"
        real = os.path.realpath(os.path.join(ROOT, BUILD, soname))
        shutil.copyfile(real, os.path.join(self.build_lib, "hmt", soname))


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True  # native code inside: platlib, a platform tag


class platform_wheel(bdist_wheel):
    def get_tag(self):
        return ("py3", "none") + tuple(super().get_tag()[2:])  # ctypes: any Python 3


pip_build = os.path.join(BUILD, "pip")
os.makedirs(os.path.join(ROOT, pip_build), exist_ok=True)
setup(
    name=META["name"],
    version=VERSION,
    description=META["description"],
    license=META["license"]["text"],
    classifiers=META.get("classifiers", []),
    python_requires=META["requires-python"],
    extras_require=META.get("optional-dependencies", {}),
    packages=["hmt"],
    package_dir={"hmt": "python/hmt"},
    distclass=BinaryDistribution,
    cmdclass={"build_py": build_py_with_lib, "bdist_wheel": platform_wheel},
    options={"build": {"build_base": pip_build}, "egg_info": {"egg_base": pip_build}},
)
