import struct

import numpy as np
import pytest

from medimg.common.errors import FormatError, InputError
from medimg.mandible.mesh import facet_normals, is_closed, largest_component, mask_to_mesh, mesh_volume, read_stl, write_stl

# Marching cubes at level 0.5 puts the faces of a binary cube of side n on the voxel faces, so the
# surface is the n^3 box with its 12 edges chamfered (right triangles of legs 0.5 along n - 1) and
# its 8 corners cut (a 0.5^3 corner cube keeps only a tetrahedron of 0.5^3 / 6):
# 216 - 12 * 5 * 0.125 - 8 * (0.125 - 0.125 / 6) = 216 - 7.5 - 5/6.
RAW_CUBE_VOLUME = 216.0 - 7.5 - 5.0 / 6.0


def _cube(shape=(10, 10, 10), start=2, side=6) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[start : start + side, start : start + side, start : start + side] = True
    return mask


def _directed_edges_unique(faces: np.ndarray) -> bool:
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return len(np.unique(directed, axis=0)) == len(directed)


def test_raw_cube_mesh_is_closed_with_the_hand_computed_volume_and_box():
    vertices, faces = mask_to_mesh(_cube(), np.eye(4), smoothing_iterations=0)
    assert vertices.dtype == np.float32 and vertices.shape[1] == 3
    assert faces.dtype == np.int64 and faces.shape[1] == 3
    assert is_closed(faces)
    assert _directed_edges_unique(faces)  # consistently wound
    assert mesh_volume(vertices, faces) == pytest.approx(RAW_CUBE_VOLUME, abs=1e-6)
    np.testing.assert_allclose(vertices.min(axis=0), [1.5, 1.5, 1.5])
    np.testing.assert_allclose(vertices.max(axis=0), [7.5, 7.5, 7.5])


def test_smoothed_cube_keeps_its_volume_and_box():
    vertices, faces = mask_to_mesh(_cube(), np.eye(4))
    assert is_closed(faces)
    assert mesh_volume(vertices, faces) == pytest.approx(216.0, rel=0.10)
    np.testing.assert_allclose(vertices.min(axis=0), [1.5, 1.5, 1.5], atol=0.3)
    np.testing.assert_allclose(vertices.max(axis=0), [7.5, 7.5, 7.5], atol=0.3)


def test_normals_point_out_of_the_cube():
    vertices, faces = mask_to_mesh(_cube(), np.eye(4), smoothing_iterations=0)
    centroids = vertices[faces].mean(axis=1)
    outward = np.einsum("ij,ij->i", facet_normals(vertices, faces), centroids - 4.5)
    assert np.all(outward > 0)


def test_affine_columns_scale_i_j_k_and_its_translation_moves_the_mesh():
    affine = np.diag([2.0, 1.0, 0.5, 1.0])  # column, row, slice spacing: determinant 1
    affine[:3, 3] = [10.0, -20.0, 30.0]
    mask = np.zeros((10, 12, 14), bool)
    mask[1:3, 2:6, 3:10] = True  # k in 1..2, j in 2..5, i in 3..9
    vertices, faces = mask_to_mesh(mask, affine, smoothing_iterations=0)
    np.testing.assert_allclose(vertices.min(axis=0), [10 + 2 * 2.5, -20 + 1.5, 30 + 0.5 * 0.5])
    np.testing.assert_allclose(vertices.max(axis=0), [10 + 2 * 9.5, -20 + 5.5, 30 + 0.5 * 2.5])
    cube_vertices, cube_faces = mask_to_mesh(_cube(), np.diag([2.0, 1.0, 0.5, 1.0]), smoothing_iterations=0)
    assert mesh_volume(cube_vertices, cube_faces) == pytest.approx(RAW_CUBE_VOLUME, abs=1e-5)


def test_left_handed_affine_still_gives_outward_normals_and_positive_volume():
    # e.g. a series whose slice normal points against the stacking order, or LPS -> RAS of one axis
    anisotropic = np.diag([-0.5, 0.5, 2.0, 1.0])  # determinant -0.5
    mirrored = np.diag([-1.0, 1.0, 1.0, 1.0])  # determinant -1
    for affine, scale in ((anisotropic, 0.5), (mirrored, 1.0)):
        vertices, faces = mask_to_mesh(_cube(), affine, smoothing_iterations=0)
        assert is_closed(faces)
        assert mesh_volume(vertices, faces) == pytest.approx(scale * RAW_CUBE_VOLUME, abs=1e-5)
    vertices, faces = mask_to_mesh(_cube(), mirrored, smoothing_iterations=0)
    centre = np.array([-4.5, 4.5, 4.5])
    outward = np.einsum("ij,ij->i", facet_normals(vertices, faces), vertices[faces].mean(axis=1) - centre)
    assert np.all(outward > 0)


def test_mask_touching_the_border_gives_a_closed_surface():
    mask = np.ones((3, 4, 5), bool)
    vertices, faces = mask_to_mesh(mask, np.eye(4), smoothing_iterations=0)
    assert is_closed(faces)
    np.testing.assert_allclose(vertices.min(axis=0), [-0.5, -0.5, -0.5])
    np.testing.assert_allclose(vertices.max(axis=0), [4.5, 3.5, 2.5])


def test_noisy_masks_with_edge_touching_voxels_stay_watertight():
    # Voxels that meet only along an edge make Lewiner's marching cubes share that edge between
    # four faces; the mesh must stay printable anyway.
    rng = np.random.default_rng(1)
    for probability in (0.2, 0.5):
        mask = rng.random((12, 12, 12)) < probability
        vertices, faces = mask_to_mesh(mask, np.eye(4), largest_component=False)
        assert is_closed(faces)
        assert _directed_edges_unique(faces)
        assert mesh_volume(vertices, faces) > 0


def test_major_components_keep_both_halves_of_a_cut_mandible_and_drop_specks():
    from medimg.mandible.mesh import major_components

    mask = np.zeros((6, 12, 12), bool)
    mask[1:5, 1:4, 1:4] = True  # left half: 36 voxels
    mask[1:5, 1:4, 8:11] = True  # right half: 36 voxels, not touching the left
    mask[1:3, 8:11, 8:11] = True  # 18 voxels: half of the largest, kept at fraction 0.25
    mask[5, 10, 0] = True  # a speck: dropped
    kept = major_components(mask, fraction=0.25)
    assert kept.sum() == 36 + 36 + 18 and not kept[5, 10, 0]
    assert major_components(mask, fraction=0.6).sum() == 72  # the two halves only
    assert major_components(mask, fraction=1.0).sum() == 72  # equal largest ones both stay
    assert not major_components(np.zeros((2, 2, 2), bool), fraction=0.25).any()


def test_largest_component_keeps_the_bigger_blob_and_joins_corner_neighbours():
    mask = np.zeros((10, 10, 10), bool)
    mask[0:3, 0:3, 0:3] = True  # A: 27 voxels
    mask[6:8, 6:8, 6:8] = True  # B: 8 voxels
    kept = largest_component(mask)
    assert kept.dtype == bool and kept.sum() == 27 and kept[0:3, 0:3, 0:3].all()
    # Blocks meeting B only at a corner voxel (E at (5, 5, 5), C at (8, 8, 8)) and one sharing a
    # face with it (F): 8 + 8 + 8 + 8 = 32 > 27 when corners connect (26-connectivity); with
    # face connectivity the biggest of them would be B + F = 16 and A would win.
    mask[4:6, 4:6, 4:6] = True
    mask[8:10, 8:10, 8:10] = True
    mask[6:8, 6:8, 8:10] = True
    kept = largest_component(mask)
    assert kept.sum() == 32
    assert not kept[0:3, 0:3, 0:3].any()
    assert not largest_component(np.zeros((2, 2, 2), bool)).any()


def test_mesh_of_two_blobs_keeps_only_the_larger_unless_asked():
    mask = _cube()
    mask[0, 0, 0] = True
    one = mask_to_mesh(mask, np.eye(4), smoothing_iterations=0)
    both = mask_to_mesh(mask, np.eye(4), smoothing_iterations=0, largest_component=False)
    assert mesh_volume(*one) == pytest.approx(RAW_CUBE_VOLUME, abs=1e-6)
    assert mesh_volume(*both) == pytest.approx(RAW_CUBE_VOLUME + 1.0 / 6.0, abs=1e-6)  # one voxel: an octahedron, 4/3 * 0.5^3


def test_empty_mask_is_an_input_error():
    with pytest.raises(InputError, match="expected a non-empty mask, got 0 voxels"):
        mask_to_mesh(np.zeros((4, 4, 4), bool), np.eye(4))


def test_is_closed_and_volume_on_a_hand_made_tetrahedron():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    assert is_closed(faces)
    assert mesh_volume(vertices, faces) == pytest.approx(1.0 / 6.0)
    assert mesh_volume(vertices, faces[:, ::-1]) == pytest.approx(-1.0 / 6.0)
    assert not is_closed(faces[:3])
    assert not is_closed(np.zeros((0, 3), np.int64))


def test_stl_round_trip_and_layout(tmp_path):
    vertices, faces = mask_to_mesh(_cube(), np.eye(4), smoothing_iterations=0)
    path = write_stl(tmp_path / "mandible.stl", vertices, faces)
    data = path.read_bytes()
    assert len(data) == 80 + 4 + 50 * len(faces)
    header = data[:80]
    assert header.startswith(b"medimg") and b"mm" in header and b"SPACE=LPS" in header
    assert not header.lower().startswith(b"solid")
    assert struct.unpack_from("<I", data, 80)[0] == len(faces)
    # first facet: its stored normal is the unit normal of its three stored corners
    first = np.frombuffer(data, "<f4", count=12, offset=84)
    np.testing.assert_allclose(first[:3], facet_normals(first[3:].reshape(1, 3, 3).reshape(3, 3), np.array([[0, 1, 2]]))[0])
    assert np.linalg.norm(first[:3]) == pytest.approx(1.0, abs=1e-6)
    read_vertices, read_faces = read_stl(path)
    assert len(read_faces) == len(faces) and len(read_vertices) == len(vertices)
    np.testing.assert_array_equal(read_vertices[read_faces], vertices[faces])
    assert is_closed(read_faces)
    assert mesh_volume(read_vertices, read_faces) == pytest.approx(RAW_CUBE_VOLUME, abs=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["mandible.stl"]  # no temporary left behind


def test_stl_refuses_bad_faces_and_reads_only_whole_files(tmp_path):
    with pytest.raises(InputError, match="expected face indices in"):
        write_stl(tmp_path / "bad.stl", np.zeros((3, 3)), np.array([[0, 1, 3]]))
    assert not (tmp_path / "bad.stl").exists()
    truncated = tmp_path / "truncated.stl"
    truncated.write_bytes(b" " * 80 + struct.pack("<I", 2) + b"\0" * 50)
    with pytest.raises(FormatError, match="expected a binary STL of 184 bytes for 2 facets"):
        read_stl(truncated)
