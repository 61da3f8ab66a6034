"""The digit-scenes study behind ``tools/dense_study.py``: which runs it makes
(:mod:`.runs`), the pretraining they start from (:mod:`.pretrain`), how each config is
pointed at the study's data and schedule (:mod:`.options`), the scheduler that runs them
side by side at one thread each and records wall and CPU time (:mod:`.jobs`), the learning
curves read back from mmengine's logs (:mod:`.curves`), the GFLOP counter (:mod:`.flops`)
and the tables (:mod:`.table`)."""
