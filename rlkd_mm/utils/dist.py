"""Distributed runs on machines without CUDA."""


def setup_cpu_distributed(cfg) -> bool:
    """For ``--launcher pytorch`` on a machine without CUDA: join a gloo process group (from
    the environment ``torch.distributed.run`` sets), because mmengine's ``init_dist`` calls
    ``torch.cuda.set_device``; and wrap the model in DDP without ``device_ids`` (a CPU module
    takes none). mmengine then finds the group initialised and skips its own set-up. With CUDA
    nothing changes. Returns whether it initialised the group."""
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available() or dist.is_initialized():
        return False
    dist.init_process_group(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    return True


def shutdown_distributed() -> None:
    """Destroy the default process group, if any, at the end of a run: a gloo group left to the
    interpreter's exit can abort a finished run ("terminate called without an active
    exception", exit code -6)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no rank tears down while another still communicates
        dist.destroy_process_group()
