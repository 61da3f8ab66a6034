# The same student, with DeiT hard distillation from the digits ResNet teacher
# (tools/digits_demo.py trains it first and passes its checkpoint).
_base_ = './levit-128s_digits.py'

model = dict(
    head=dict(distill_type='hard'),
    teacher=dict(config='{{fileDirname}}/resnet18-w32_digits.py',
                 checkpoint='work_dirs/digits/teacher/teacher.pth'))
