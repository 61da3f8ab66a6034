"""Bad input: one specific message and exit status 2 from the tools, never a traceback;
odd but valid images just work."""
import numpy as np
import pytest
import torch
from conftest import REPO, randomize_, run_py
from PIL import Image
from tool_loading import load_tool, run_tool_cli

from levit_mm.finite import NonFiniteInputError
from levit_tools.images import load_rgb_image

CONFIG = 'configs/levit/levit-128s_8xb256_in1k.py'


@pytest.fixture(scope='module')
def demo():
    return load_tool('demo/image_demo.py')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A 128S and a 192 checkpoint (random weights) and a set of broken files."""
    from mmpretrain import get_model
    root = tmp_path_factory.mktemp('bad')
    for arch in ('128s', '192'):
        model = randomize_(get_model(f'levit-{arch}_3rdparty_in1k'), seed=2)
        torch.save({'state_dict': model.state_dict(), 'meta': {}}, root / f'{arch}.pth')
    data = (root / '128s.pth').read_bytes()
    (root / 'truncated.pth').write_bytes(data[:len(data) // 3])
    jpeg = open(f'{REPO}/demo/chelsea.jpg', 'rb').read()
    (root / 'truncated.jpg').write_bytes(jpeg[:len(jpeg) // 2])
    Image.open(f'{REPO}/demo/chelsea.jpg').save(root / 'chelsea.png')
    png = (root / 'chelsea.png').read_bytes()
    (root / 'truncated.png').write_bytes(png[:len(png) // 2])
    (root / 'noise.jpg').write_bytes(np.random.default_rng(0).bytes(3000))
    (root / 'empty.png').write_bytes(b'')
    (root / 'folder.jpg').mkdir()
    return root


def demo_error(demo, capsys, argv):
    code, _, stderr = run_tool_cli(demo, argv, capsys)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert lines[0].startswith('error: ') and 'Traceback' not in stderr
    return stderr


# ----------------------------------------------------------------- image files
@pytest.mark.parametrize('name, message', [
    ('missing.jpg', "error: Image not found: '{root}/missing.jpg' (no such file)."),
    ('folder.jpg', "error: Expected an image file, got the directory '{root}/folder.jpg'."),
    ('noise.jpg', "error: '{root}/noise.jpg' is not a readable image: expected a JPEG, PNG, "
                  'BMP, TIFF, WebP or GIF file, found 3000 bytes in no known image format.'),
    ('empty.png', "error: '{root}/empty.png' is not a readable image: expected a JPEG, PNG, "
                  'BMP, TIFF, WebP or GIF file, found an empty file.'),
    ('truncated.jpg', "error: Image '{root}/truncated.jpg' is truncated or corrupt ("),
    ('truncated.png', "error: Image '{root}/truncated.png' is truncated or corrupt ("),
])
def test_bad_image_file(demo, files, capsys, name, message):
    stderr = demo_error(demo, capsys, [str(files / name), CONFIG, '--checkpoint',
                                       str(files / '128s.pth')])
    assert message.format(root=files) in stderr, stderr


def test_bad_image_in_a_subprocess_exits_2_without_traceback(files):
    proc = run_py(['demo/image_demo.py', str(files / 'truncated.jpg'), CONFIG,
                   '--checkpoint', str(files / '128s.pth')])
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and errors[0] == proc.stderr.strip().splitlines()[-1]
    assert errors[0].startswith(f"error: Image '{files}/truncated.jpg' is truncated or corrupt")


def _gray(h=24, w=32):
    return np.random.default_rng(5).integers(0, 256, size=(h, w), dtype=np.uint8)


def _rgb(h=24, w=32):
    return np.random.default_rng(6).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize('kind', ['L', 'LA', 'RGBA', 'P', 'P+transparency', 'I;16', 'I',
                                  'CMYK', '1'])
def test_image_modes_become_rgb(tmp_path, kind):
    gray, rgb = _gray(), _rgb()
    if kind in ('L', '1'):
        img = Image.fromarray(gray).convert(kind)
        expected = np.asarray(img.convert('L'))[..., None].repeat(3, 2)
    elif kind == 'LA':
        img = Image.fromarray(np.dstack([gray, gray[::-1]]), 'LA')
        expected = gray[..., None].repeat(3, 2)
    elif kind == 'RGBA':
        img = Image.fromarray(np.dstack([rgb, gray]), 'RGBA')
        expected = rgb
    elif kind.startswith('P'):
        img = Image.fromarray(rgb).quantize(16)
        if kind == 'P+transparency':
            img.info['transparency'] = 0
        expected = np.asarray(img.convert('RGB'))
    elif kind in ('I;16', 'I'):  # 16-bit grayscale PNG: full range scaled down exactly
        img = Image.fromarray(gray.astype(np.uint16) * 257)
        if kind == 'I':
            img = img.convert('I')
        expected = gray[..., None].repeat(3, 2)
    else:  # CMYK JPEG-style data
        img = Image.fromarray(rgb).convert('CMYK')
        expected = np.asarray(img.convert('RGB'))
    suffix = {'CMYK': '.jpg', 'I': '.tif'}.get(kind, '.png')  # PNG cannot hold 32-bit 'I'
    path = tmp_path / f'img{suffix}'
    img.save(path, quality=100) if suffix == '.jpg' else img.save(path)
    if kind == 'CMYK':
        expected = np.asarray(Image.open(path).convert('RGB'))
    arr = load_rgb_image(str(path))
    assert arr.dtype == np.uint8 and arr.shape == (24, 32, 3)
    np.testing.assert_array_equal(arr, expected)


def top5(stdout):
    return [line.split()[-1] for line in stdout.splitlines()
            if line.strip()[:2] in ('1.', '2.', '3.', '4.', '5.')]


def test_16bit_and_tiny_images_run_through_the_demo(demo, files, capsys, tmp_path):
    """A 16-bit PNG predicts exactly what its 8-bit twin does; an image smaller than the
    stem's stride of 16 (5x7) is classified too (the pipeline resizes it first)."""
    gray = np.asarray(Image.open(f'{REPO}/demo/chelsea.jpg').convert('L'))
    Image.fromarray(gray).save(tmp_path / 'gray8.png')
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / 'gray16.png')
    assert Image.open(tmp_path / 'gray16.png').mode.startswith('I')
    Image.fromarray(_rgb(5, 7)).save(tmp_path / 'tiny.png')
    results = {}
    for name in ('gray8', 'gray16', 'tiny'):
        code, stdout, stderr = run_tool_cli(demo, [str(tmp_path / f'{name}.png'), CONFIG,
                                                   '--checkpoint', str(files / '128s.pth')],
                                            capsys)
        assert code == 0, stderr
        results[name] = top5(stdout)
        assert len(results[name]) == 5
    assert results['gray8'] == results['gray16']


# ----------------------------------------------------------------- models and configs
def test_unknown_model_name_suggests_close_ones(demo, files, capsys):
    stderr = demo_error(demo, capsys, [f'{REPO}/demo/chelsea.jpg', 'levit-128x_3rdparty_in1k'])
    assert ("error: Unknown model name 'levit-128x_3rdparty_in1k'. Closest models: "
            "'levit-128_3rdparty_in1k', 'levit-128s_3rdparty_in1k'") in stderr


def test_missing_config_suggests_existing_ones(demo, capsys):
    stderr = demo_error(demo, capsys, [f'{REPO}/demo/chelsea.jpg',
                                       'configs/levit/levit-1024_8xb256_in1k.py'])
    assert "error: Config file not found: 'configs/levit/levit-1024_8xb256_in1k.py'. " \
        'Closest configs: ' in stderr


def test_config_with_unknown_variant(demo, files, capsys, tmp_path):
    config = tmp_path / 'levit-265.py'
    config.write_text(f"_base_ = '{REPO}/{CONFIG}'\nmodel = dict(backbone=dict(arch='265'))\n")
    stderr = demo_error(demo, capsys, [f'{REPO}/demo/chelsea.jpg', str(config),
                                       '--checkpoint', str(files / '128s.pth')])
    assert (f"error: {config} asks for LeViT arch '265', which does not exist; the variants "
            "are ['128s', '128', '192', '256', '384', '384_s8', '512_s8', '512', '256d', "
            "'512d'] (or a dict with embed_dims, num_heads, depths, key_dims). Closest archs: "
            "'256'") in stderr


def test_config_without_checkpoint(demo, capsys):
    stderr = demo_error(demo, capsys, [f'{REPO}/demo/chelsea.jpg', CONFIG])
    assert f"error: '{CONFIG}' is a config file: give its weights with --checkpoint" in stderr


# ----------------------------------------------------------------- checkpoints
def test_checkpoint_of_the_wrong_variant_lists_keys_and_shapes(demo, files, capsys):
    stderr = demo_error(demo, capsys, [f'{REPO}/demo/chelsea.jpg', CONFIG, '--checkpoint',
                                       str(files / '192.pth')])
    lines = stderr.splitlines()
    assert lines[0] == (f"error: Checkpoint '{files}/192.pth' does not fit the model: 191 "
                        'tensors differ in shape, 0 are missing, 75 are unexpected.')
    assert lines[1] == ('It holds a LeViT-192 backbone: use configs/levit/levit-192_8xb256_'
                        'in1k.py (or the model name levit-192_3rdparty_in1k).')
    assert ('  shape backbone.patch_embed.patch_embed.0.conv.weight: checkpoint [24, 3, 3, 3] '
            'vs model [16, 3, 3, 3]') in lines
    assert lines[-1] == f'  ... and {191 + 75 - 12} more'


def test_test_tool_refuses_the_wrong_variant(files, capsys, tmp_path):
    test_tool = load_tool('tools/test.py')
    code, _, stderr = run_tool_cli(test_tool, [CONFIG, str(files / '192.pth'), '--work-dir',
                                               str(tmp_path)], capsys)
    assert code == 2
    assert f"error: Checkpoint '{files}/192.pth' does not fit the model" in stderr


def test_truncated_or_missing_checkpoint(demo, files, capsys):
    stderr = demo_error(demo, capsys, [f'{REPO}/demo/chelsea.jpg', CONFIG, '--checkpoint',
                                       str(files / 'truncated.pth')])
    assert (f"error: Cannot read checkpoint '{files}/truncated.pth': the file is truncated "
            'or not a torch checkpoint') in stderr
    stderr = demo_error(demo, capsys, [f'{REPO}/demo/chelsea.jpg', CONFIG, '--checkpoint',
                                       str(files / 'nope.pth')])
    assert f"error: Checkpoint not found: '{files}/nope.pth' (no such file)." in stderr


# ----------------------------------------------------------------- tensors
@pytest.mark.parametrize('value, counts', [(float('nan'), '2 NaN, 0 +Inf, 0 -Inf'),
                                           (float('inf'), '0 NaN, 2 +Inf, 0 -Inf'),
                                           (float('-inf'), '0 NaN, 0 +Inf, 2 -Inf')])
def test_non_finite_input(value, counts):
    from mmpretrain import get_model
    model = get_model('levit-128s_3rdparty_in1k').eval()
    x = torch.zeros(1, 3, 64, 48)
    x[0, 1, 5, 7] = x[0, 2, 0, 0] = value
    with pytest.raises(NonFiniteInputError) as info:
        model(x, mode='tensor')
    assert str(info.value) == (
        f'The LeViT input contains non-finite values ({counts} of 9216 elements, shape '
        '(1, 3, 64, 48)); expected finite numbers. Check how the image was decoded and '
        'normalised (a zero std gives Inf).')


def test_finite_check_survives_overflowing_sum():
    """The fast path sums the input; a sum that overflows from large *finite* values must
    fall back to the element-wise test and pass, and a mixed +Inf/-Inf input (whose sum is
    NaN) must still be reported with its counts."""
    from levit_mm.finite import check_finite
    big = torch.full((2, 3, 8, 8), 3e38)
    assert not torch.isfinite(big.sum())
    check_finite(big)  # no error
    mixed = torch.zeros(1, 3, 4, 4)
    mixed[0, 0, 0, 0], mixed[0, 1, 1, 1] = float('inf'), float('-inf')
    with pytest.raises(NonFiniteInputError, match=r'0 NaN, 1 \+Inf, 1 -Inf'):
        check_finite(mixed)
