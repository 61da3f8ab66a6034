# Fine-tune as in levit-128s_ft_custom.py, with DeiT hard distillation from a teacher that
# already knows your classes (any mmpretrain classifier: its config and checkpoint).  If it
# was trained with another normalisation, its config's data_preprocessor says so and the
# inputs are mapped to it; `input_size=(h, w)` resizes them for it.
_base_ = './levit-128s_ft_custom.py'

model = dict(
    head=dict(distill_type='hard'),
    teacher=dict(
        _delete_=True,
        config='work_dirs/custom_teacher/teacher_config.py',
        checkpoint='work_dirs/custom_teacher/teacher.pth'))
