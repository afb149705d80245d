import numpy as np

from medimg.oct_glands.blend import predict_and_merge


def test_overlapping_blocks_are_averaged_and_uncovered_voxels_are_zero():
    volume = np.zeros((4, 2, 6), np.uint8)
    corners = np.array([[0, 0, 0], [0, 0, 2]])
    values = {0: 0.2, 2: 0.6}  # block at x*=0 predicts 0.2 everywhere, at x*=2 predicts 0.6

    def predictor(blocks):
        return np.stack([np.full(b.shape, v, np.float32) for b, v in zip(blocks, [values[c[2]] for c in current])])

    current = []

    def blocks_for(batch):
        current[:] = corners[batch]
        return np.stack([volume[y : y + 2, z : z + 2, x : x + 4] for y, z, x in corners[batch]])

    # blocks are (2, 2, 4): x 0..3 and 2..5 overlap on x = 2, 3; rows y = 2, 3 are not covered
    for batch_size in (1, 2):
        probability = predict_and_merge(blocks_for, corners, volume.shape, predictor=predictor, batch_size=batch_size)
        assert probability.dtype == np.float32
        np.testing.assert_allclose(probability[0, 0], [0.2, 0.2, 0.4, 0.4, 0.6, 0.6])
        assert np.all(probability[2:] == 0)
