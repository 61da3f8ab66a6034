"""levit_mm takes over mmpretrain's LeViT names in any import order, and configs need only
``custom_imports``."""
import pytest
from conftest import REPO, run_py

CHECK = (
    "from mmpretrain.registry import MODELS\n"
    "from mmpretrain.apis.model import ModelHub\n"
    "import mmpretrain, levit_mm\n"
    "assert MODELS.get('LeViT') is levit_mm.LeViT, MODELS.get('LeViT')\n"
    "assert MODELS.get('LeViTClsHead') is levit_mm.LeViTClsHead\n"
    "names = mmpretrain.list_models('levit*')\n"
    "assert 'levit-128s_3rdparty_in1k' in names, names\n"
    "for a in ['128s', '128', '192', '256', '384']:\n"
    "    meta = ModelHub.get(f'levit-{a}_3rdparty_in1k')\n"
    "    assert meta.config.filename.startswith(%r), meta.config.filename\n"
    "    assert 'custom_imports' in meta.config\n"
    "model = mmpretrain.get_model('levit-128s_3rdparty_in1k')\n"
    "assert type(model.backbone) is levit_mm.LeViT\n"
    "assert type(model.head) is levit_mm.LeViTClsHead\n"
    "print('OK')\n" % REPO)

ORDERS = {
    'levit_mm first': 'import levit_mm\n',
    'mmpretrain models first': 'import mmpretrain.models\nfrom mmpretrain.models import LeViT\n'
                               'import levit_mm\n',
    'register_all_modules first': 'from mmpretrain.utils import register_all_modules\n'
                                  'register_all_modules()\nimport levit_mm\n',
    'model hub first': 'import mmpretrain\nmmpretrain.list_models()\nimport levit_mm\n',
    'register_all_modules after': 'import levit_mm\nfrom mmpretrain.utils import '
                                  'register_all_modules\nregister_all_modules()\n',
}


@pytest.mark.parametrize('order', list(ORDERS))
def test_import_order_never_fails(order):
    proc = run_py(['-c', ORDERS[order] + CHECK])
    assert proc.returncode == 0 and 'OK' in proc.stdout, proc.stderr[-3000:]


def test_custom_imports_in_config_is_enough():
    code = (
        "from mmengine.config import Config\n"
        "from mmpretrain.registry import MODELS\n"
        "import sys\n"
        "cfg = Config.fromfile('configs/levit/levit-192_8xb256_in1k.py')\n"
        "assert 'levit_mm' in sys.modules\n"
        "model = MODELS.build(cfg.model)\n"
        "assert type(model.backbone).__module__ == 'levit_mm.backbones.levit'\n"
        "assert model.backbone.arch['embed_dims'] == [192, 288, 384]\n"
        "print('OK')\n")
    proc = run_py(['-c', code])
    assert proc.returncode == 0 and 'OK' in proc.stdout, proc.stderr[-3000:]
