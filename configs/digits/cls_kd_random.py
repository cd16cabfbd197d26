# Control: KD with a random per-image temperature (rlkd_mm.RandomTemperature), drawn
# log-uniformly from [t_min, t_max] for every image at every iteration and shared by student and
# teacher: what the published RLKD code effectively trains with, since its reward does not depend
# on the temperatures it chooses. Range [1, 3] (RLKD's on this testbed) and KD weight 1 were
# chosen on the validation split among [0.5, 3], [1, 3] x weight 1, 3, seeds 0 and 1
# (tools/benchmark/digits_cls_headroom_sweeps.sh). The generator is seeded with the run's seed
# and its state is saved in checkpoints, so a resumed run continues the same draws.
_base_ = ['./cls_kd_fixed.py']

model = dict(
    temperature=dict(_delete_=True, type='rlkd_mm.RandomTemperature', t_min=1.0, t_max=3.0),
    kd_loss=dict(loss_weight=1.0),
)
