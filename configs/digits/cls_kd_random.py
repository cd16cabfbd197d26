# Control: KD with a random per-image temperature (rlkd_mm.RandomTemperature), drawn
# log-uniformly from [t_min, t_max] for every image at every iteration and shared by student and
# teacher: what the published RLKD code effectively trains with, since its reward does not depend
# on the temperatures it chooses. The range is RLKD's on this testbed (configs/digits/
# cls_kd_rlkd.py, [1, 3]); not tuned. The generator is seeded with the run's seed and its state
# is saved in checkpoints, so a resumed run continues the same draws.
_base_ = ['./cls_kd_fixed.py']

model = dict(
    temperature=dict(_delete_=True, type='rlkd_mm.RandomTemperature', t_min=1.0, t_max=3.0)
)
