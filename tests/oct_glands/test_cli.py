import json

import numpy as np
import tifffile
from typer.testing import CliRunner

from medimg.cli import app
from medimg.common.tables import read_csv
from medimg.common.volumes import read_volume
from medimg.oct_glands.denoise import denoise_volume

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, ["--quiet", *map(str, args)])
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def test_stage_chain_gives_the_same_pores_as_extract(tmp_path, toy_scan, random_weights):
    chain = tmp_path / "chain"
    network = ["--weights", random_weights, "--device", "cpu"]
    (surface,) = invoke("oct", "surface", toy_scan, "-o", chain)
    blocks, corners = invoke("oct", "crop", toy_scan, "--surface", surface, "-o", chain)
    assert corners.endswith("corners.csv")
    (probability,) = invoke("oct", "infer", blocks, *network)
    mask, threshold_line = invoke("oct", "threshold", probability)
    glands, _ = invoke("oct", "prune", mask, "--probability", probability, "--surface", surface)
    (pores,) = invoke("oct", "project", glands, "--probability", probability, "--surface", surface)

    paths = invoke("oct", "extract", toy_scan, "--no-denoise", "--tiling", "paper", "-o", tmp_path / "one", *network)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["pores.csv", "glands.tif", "fingerprint.png", "bscan_overlay.png", "summary.json", "report.html"]
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert threshold_line == f"threshold={summary['threshold']:.6g}"
    assert (tmp_path / "one" / "pores.csv").read_text() == open(pores).read()
    np.testing.assert_array_equal(read_volume(tmp_path / "one" / "glands.tif"), read_volume(glands))
    assert summary["weights"] == str(random_weights)


def test_denoise_stage_writes_what_the_function_computes(tmp_path):
    rng = np.random.default_rng(0)
    clean = np.full((2, 40, 48), 20.0)
    clean[:, 15:, :] = 150.0
    noisy = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "n.tif", noisy, photometric="minisblack")
    (path,) = invoke("oct", "denoise", tmp_path / "n.tif", "--sigma", 8, "--bm3d-stage", "hard")
    assert path == str(tmp_path / "n_oct" / "denoised.tif")
    denoised = read_volume(path)
    np.testing.assert_array_equal(denoised, denoise_volume(noisy, sigma=8, stage="hard"))
    error_before = np.abs(noisy - clean).mean()
    error_after = np.abs(denoised - clean).mean()
    assert error_after < error_before / 3


def test_synth_writes_volume_truth_and_pores(tmp_path):
    paths = invoke("oct", "synth", tmp_path / "p.tif", "--shape", "48,96,64", "--seed", "4")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["p.tif", "p_glands.tif", "p_pores.csv", "p_params.json"]
    volume, glands = read_volume(paths[0]), read_volume(paths[1])
    assert volume.shape == glands.shape == (48, 96, 64) and volume.dtype == np.uint8
    n_pores = len(open(paths[2]).read().splitlines()) - 1
    assert n_pores == glands.max() >= 1


def test_evaluate_prints_scores_as_json(tmp_path):
    truth = np.zeros((2, 2, 4), np.uint8)
    truth[0, 0] = 1
    predicted = np.zeros_like(truth)
    predicted[0, 0, :2] = 1
    tifffile.imwrite(tmp_path / "t.tif", truth, photometric="minisblack")
    tifffile.imwrite(tmp_path / "p.tif", predicted, photometric="minisblack")
    (tmp_path / "t.csv").write_text("x,y\n0,0\n100,100\n")
    (tmp_path / "p.csv").write_text("id,x,y\n1,3,4\n2,50,50\n")
    result = runner.invoke(app, ["oct", "evaluate", "--pred-mask", str(tmp_path / "p.tif"), "--true-mask", str(tmp_path / "t.tif"),
                                 "--pred-pores", str(tmp_path / "p.csv"), "--true-pores", str(tmp_path / "t.csv"), "--json"])
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["dice"] == 2 * 2 / (4 + 2) and scores["iou"] == 0.5
    assert scores["RT"] == 0.5 and scores["RF"] == 0.5


def test_model_info_matches_table_3_within_one_percent():
    rows = json.loads("\n".join(invoke("oct", "model-info", "--json")))
    assert {row["model"] for row in rows} == {"light", "standard"}
    for row in rows:
        for key in ("params_kB", "space", "time"):
            assert abs(row[f"{key}_rel_diff"]) < 0.01


def test_bad_inputs_give_one_error_line(tmp_path):
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((90, 90), np.uint8))
    (tmp_path / "junk.tif").write_bytes(b"\x00" * 64)
    tifffile.imwrite(tmp_path / "thin.tif", np.zeros((80, 50, 80), np.uint8), photometric="minisblack")
    cases = {
        "flat.tif": "a single 2-D image",
        "junk.tif": "expected a readable TIFF volume",
        "thin.tif": "at least 80 voxels deep",
    }
    for name, message in cases.items():
        result = runner.invoke(app, ["oct", "extract", str(tmp_path / name), "--device", "cpu", "-o", str(tmp_path / "out")])
        assert result.exit_code == 1, name
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _run(*args):
    return runner.invoke(app, ["--quiet", *map(str, args)])


def test_a_bad_weights_file_stops_a_batch_at_once_and_writes_nothing(tmp_path, toy_scan):
    second = tmp_path / "second.tif"
    second.write_bytes(toy_scan.read_bytes())
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    result = _run("oct", "extract", toy_scan, second, "-o", tmp_path / "out", "--weights", tmp_path / "bad.safetensors",
                  "--no-denoise", "--device", "cpu")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == ["Error: expected a safetensors weights file, got 'bad.safetensors' which is not one (SafetensorError)"]
    assert not (tmp_path / "out").exists()


def test_a_bad_option_is_told_once_before_any_scan_is_read(tmp_path, toy_scan):
    result = _run("oct", "extract", toy_scan, toy_scan, "--denoiser", "nlm", "--device", "cpu")
    assert result.exit_code == 2  # a bad option value is a usage error
    assert result.stderr.splitlines() == ["Error: expected a denoiser among bm3d, bm3d-reference, got 'nlm'"]
    result = _run("oct", "extract", toy_scan, "--axes", "QQQ")
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    result = _run("oct", "denoise", toy_scan, "--denoise-rows", "some", "-o", tmp_path / "d")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["Error: expected --denoise-rows among tissue, surface, all, got 'some'"]
    assert not (tmp_path / "d").exists()
    result = _run("oct", "extract", toy_scan, "--test-time", "rotate", "-o", tmp_path / "t")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["Error: expected --test-time among none, flips, dihedral, got 'rotate'"]
    assert not (tmp_path / "t").exists()


def test_weights_name_their_own_network_without_model(tmp_path, toy_scan):
    import torch

    from medimg.common.models import weights_metadata
    from medimg.common.weights import save_weights
    from medimg.oct_glands.models import build_model

    torch.manual_seed(0)
    network = build_model("standard", channels=[4, 8])
    weights = save_weights(tmp_path / "standard.safetensors", network.state_dict(), arch="oct-standard",
                           metadata=weights_metadata("oct-standard", network))
    out = tmp_path / "out"
    invoke("oct", "extract", toy_scan, "-o", out, "--weights", weights, "--no-denoise", "--device", "cpu")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arch"] == "oct-standard" and summary["weights"] == str(weights)
    assert summary["options"]["inference"]["model"] is None


def test_a_failed_extract_leaves_no_partial_outputs(tmp_path, toy_scan, random_weights):
    out = tmp_path / "out"
    out.mkdir()
    (out / "fingerprint.png").mkdir()  # a folder in the way of one output
    result = _run("oct", "extract", toy_scan, "-o", out, "--weights", random_weights, "--no-denoise", "--device", "cpu")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")
    assert sorted(p.name for p in out.iterdir()) == ["fingerprint.png"]  # no pores.csv or glands.tif without the rest


def test_surface_method_robust_by_default_paper_on_request(tmp_path):
    from tests.oct_glands.test_surface import spec_like_scan

    volume, truth = spec_like_scan()
    tifffile.imwrite(tmp_path / "scan.tif", volume, photometric="minisblack")
    (robust,) = invoke("oct", "surface", tmp_path / "scan.tif", "-o", tmp_path / "robust")
    (paper,) = invoke("oct", "surface", tmp_path / "scan.tif", "--surface-method", "paper", "-o", tmp_path / "paper")
    assert np.mean(np.abs(tifffile.imread(robust) - truth) <= 5) >= 0.95
    assert np.mean(np.abs(tifffile.imread(paper) - truth) <= 5) < 0.5
    bad = runner.invoke(app, ["oct", "surface", str(tmp_path / "scan.tif"), "--surface-method", "largest"])
    assert bad.exit_code == 2 and "largest" in bad.stderr


def test_two_scans_of_one_name_get_two_folders_and_an_input_is_never_an_output(tmp_path, toy_scan_volume, random_weights):
    for case in ("x", "y"):
        (tmp_path / case).mkdir()
        tifffile.imwrite(tmp_path / case / "scan.tif", toy_scan_volume, photometric="minisblack")
    network = ["--weights", str(random_weights), "--device", "cpu", "--no-denoise"]
    paths = invoke("oct", "extract", tmp_path / "x" / "scan.tif", tmp_path / "y" / "scan.tif", "-o", tmp_path / "out", *network)
    assert {p.rsplit("/", 2)[1] for p in paths} == {"x_scan_oct", "y_scan_oct"}
    # an output named like the input, in the input's folder: refused before any work, nothing written
    tifffile.imwrite(tmp_path / "glands.tif", toy_scan_volume, photometric="minisblack")
    result = runner.invoke(app, ["oct", "extract", str(tmp_path / "glands.tif"), "-o", str(tmp_path), *network])
    assert result.exit_code == 1 and "glands.tif" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "pores.csv").exists() and not list(tmp_path.glob(".*part*"))


def test_infer_averages_mirror_images_unless_told_not_to(tmp_path, toy_scan, random_weights):
    network = ["--weights", random_weights, "--device", "cpu"]
    (surface,) = invoke("oct", "surface", toy_scan, "-o", tmp_path)
    blocks, _ = invoke("oct", "crop", toy_scan, "--surface", surface, "-o", tmp_path)
    by_default = read_volume(invoke("oct", "infer", blocks, "-o", tmp_path / "flips", *network)[0])
    single = read_volume(invoke("oct", "infer", blocks, "-o", tmp_path / "none", "--test-time", "none", *network)[0])
    assert by_default.shape == single.shape
    # an untrained network is far from mirror-symmetric: averaging changes its answer
    assert np.abs(by_default - single).max() > 1e-3


def test_extract_with_band_tiling_from_the_cli(tmp_path, toy_scan, random_weights):
    network = ["--weights", random_weights, "--device", "cpu", "--no-denoise"]
    invoke("oct", "extract", toy_scan, "-o", tmp_path / "band", "--tiling", "band", "--json", *network)
    summary = json.loads((tmp_path / "band" / "summary.json").read_text())
    assert summary["tiling"] == "band" and summary["blocks"] == 2  # 80 B-scans x 120: two 80 x 96 x 80 tiles
    labels = read_volume(tmp_path / "band" / "glands.tif")
    assert labels.shape == (80, 100, 120) and labels.dtype == np.uint16
    # outside the band (from 8 above the surface at z = 10 to 80 below it) nothing is a gland
    assert not labels[:, 90:].any()
    bad = runner.invoke(app, ["oct", "extract", str(toy_scan), "-o", str(tmp_path / "x"), "--tiling", "fast"])
    assert bad.exit_code == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "Error: expected --tiling among paper, band, got 'fast'"
    assert not (tmp_path / "x").exists()


def test_extract_takes_a_minimum_gland_probability_and_refuses_one_outside_0_1(tmp_path, toy_scan, random_weights):
    network = ["--weights", random_weights, "--device", "cpu", "--no-denoise"]
    invoke("oct", "extract", toy_scan, "-o", tmp_path / "strict", "--min-probability", "1", *network)
    summary = json.loads((tmp_path / "strict" / "summary.json").read_text())
    assert summary["options"]["min_probability"] == 1.0 and summary["pores"] == 0  # no gland averages p = 1
    assert not read_volume(tmp_path / "strict" / "glands.tif").any()
    bad = runner.invoke(app, ["oct", "extract", str(toy_scan), "-o", str(tmp_path / "x"), "--min-probability", "1.5"])
    assert bad.exit_code == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "Error: expected --min-probability in [0, 1], got 1.5"
    assert not (tmp_path / "x").exists()


def test_prune_drops_shallow_glands_given_the_surface_and_project_reports_their_depth(tmp_path):
    mask = np.zeros((8, 40, 24), np.uint8)
    mask[0:8, 10:15, 0:10] = 1  # 400 voxels at depths 0..4 below a surface at z = 10: the bright band
    mask[0:6, 20:35, 12:17] = 1  # 450 voxels at depths 10..24: 90th percentile (rank 404 of 450, 30 a depth) 23
    surface = np.full((8, 24), 10, np.int32)
    tifffile.imwrite(tmp_path / "mask.tif", mask)
    tifffile.imwrite(tmp_path / "surface.tif", surface)
    _, count = invoke("oct", "prune", tmp_path / "mask.tif", "-o", tmp_path / "all")
    assert count == "glands=2"
    glands, count = invoke("oct", "prune", tmp_path / "mask.tif", "-o", tmp_path / "deep", "--surface", tmp_path / "surface.tif")
    assert count == "glands=1"  # the default --min-depth 15, as extract
    assert np.count_nonzero(read_volume(glands)) == 450
    (pores,) = invoke("oct", "project", glands, "--surface", tmp_path / "surface.tif")
    (row,) = read_csv(pores)
    assert row["depth_reached"] == "23" and row["volume_voxels"] == "450"
    _, count = invoke("oct", "prune", tmp_path / "mask.tif", "-o", tmp_path / "deeper", "--surface", tmp_path / "surface.tif",
                      "--min-depth", "24")
    assert count == "glands=0"
    bad = runner.invoke(app, ["oct", "prune", str(tmp_path / "mask.tif"), "-o", str(tmp_path / "x"), "--min-depth", "15"])
    assert bad.exit_code != 0 and bad.stdout == ""
    assert bad.stderr.strip() == "Error: expected --surface with --min-depth above 0, got no surface map"
    bad = runner.invoke(app, ["oct", "extract", str(tmp_path / "mask.tif"), "-o", str(tmp_path / "x"), "--min-depth", "-1"])
    assert bad.exit_code == 2 and bad.stdout == "" and "--min-depth" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_prune_drops_faint_glands_given_the_probability_map(tmp_path):
    mask = np.zeros((8, 12, 12), np.uint8)
    mask[0:6, 0:5, 0:5] = 1  # 150 voxels, p = 0.9
    mask[0:6, 6:11, 6:11] = 1  # 150 voxels, p = 0.6
    probability = np.where(mask > 0, 0.6, 0.1).astype(np.float32)
    probability[0:6, 0:5, 0:5] = 0.9
    tifffile.imwrite(tmp_path / "mask.tif", mask)
    tifffile.imwrite(tmp_path / "probability.tif", probability)
    _, count = invoke("oct", "prune", tmp_path / "mask.tif", "-o", tmp_path / "all", "--min-size", "120")  # the paper's size rule
    assert count == "glands=2"
    _, count = invoke("oct", "prune", tmp_path / "mask.tif", "-o", tmp_path / "sure", "--probability", tmp_path / "probability.tif",
                      "--min-probability", "0.7", "--min-size", "120")
    assert count == "glands=1"
    kept = read_volume(tmp_path / "sure" / "glands.tif")
    assert kept.max() == 1 and np.count_nonzero(kept) == 150 and kept[0, 0, 0] == 1
    bad = runner.invoke(app, ["oct", "prune", str(tmp_path / "mask.tif"), "-o", str(tmp_path / "x"), "--min-probability", "0.7"])
    assert bad.exit_code != 0 and bad.stdout == ""
    assert bad.stderr.strip() == "Error: expected --probability with --min-probability above 0, got no probability map"
    bad = runner.invoke(app, ["oct", "prune", str(tmp_path / "mask.tif"), "-o", str(tmp_path / "x"), "--probability",
                              str(tmp_path / "probability.tif"), "--min-probability", "2"])
    assert bad.exit_code != 0 and bad.stderr.strip() == "Error: expected --min-probability in [0, 1], got 2.0"
    assert not (tmp_path / "x").exists()
