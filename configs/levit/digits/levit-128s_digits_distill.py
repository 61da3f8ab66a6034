# The same student, with DeiT hard distillation from the digits ResNet teacher
# (tools/digits_demo.py trains it first and passes its checkpoint). The teacher was trained
# on 32 px views, so the student's 64 px batches are resized for it (input_size).
_base_ = './levit-128s_digits.py'

model = dict(
    head=dict(distill_type='hard'),
    teacher=dict(
        _delete_=True,
        config='{{fileDirname}}/resnet18-w32_digits.py',
        checkpoint='work_dirs/digits/teacher/teacher.pth',
        input_size=(32, 32)))
