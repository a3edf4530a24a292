import pytest

from cofitune.pipeline.launch import launch_command


def test_one_process_up_to_one_gpu_torchrun_beyond():
    assert launch_command(0) == launch_command(1) == "python -m cofitune"
    assert launch_command(8) == "torchrun --standalone --nproc_per_node=8 -m cofitune"
    with pytest.raises(ValueError, match="resource gpu"):
        launch_command(-1)
