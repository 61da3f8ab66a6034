"""Install levit_mm, the LeViT plug-in for mmpretrain."""
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def read_version():
    namespace = {}
    with open(osp.join(osp.dirname(__file__), 'levit_mm', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def add_mim_extension():
    """Copy model-index.yml and configs into ``levit_mm/.mim`` for a regular (non-editable)
    install, so ``mim`` and the model zoo find them inside the installed package.  An
    editable install reads them from the checkout instead."""
    if not {'install', 'bdist_wheel', 'sdist', 'build'} & set(sys.argv[1:]):
        return
    mim = osp.join(ROOT, 'levit_mm', '.mim')
    shutil.rmtree(mim, ignore_errors=True)
    shutil.copytree(osp.join(ROOT, 'configs'), osp.join(mim, 'configs'))
    shutil.copy(osp.join(ROOT, 'model-index.yml'), mim)


add_mim_extension()
setup(
    name='levit_mm',
    version=read_version(),
    description='LeViT for the OpenMMLab world: any input size, distillation, '
    'deploy folding and checkpoint conversion, as an mmpretrain plug-in.',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tools', 'configs', 'demo', 'levit_tools',
                                    'levit_tools.*')),
    include_package_data=True,
    package_data={'levit_mm': ['model-index.yml', 'configs/**/*', '.mim/**/*']},
    python_requires='>=3.8',
    install_requires=['mmpretrain>=1.2.0', 'mmengine>=0.10.0'],
    license='Apache License 2.0',
    zip_safe=False,
)
