"""ML work the service runs against its database, over the three libraries.

Each module joins rows (through :mod:`service.domain`) with library calls
(``supernets``, ``predictors``, ``nas``) for one kind of work:

* :mod:`~service.orchestration.training`: train a supernet and register it;
* :mod:`~service.orchestration.evaluation`: really evaluate subnets into
  measured trials, fit and version the accuracy predictor;
* :mod:`~service.orchestration.export`: choose a stored subnet and export it;
* :mod:`~service.orchestration.registration`: register a device's latency
  (measure this machine, reference packages for remote ones, submitted files);
* :mod:`~service.orchestration.device_latency`: the latency model a search
  uses for a device (a bundled table or the device's adapted predictor);
* :mod:`~service.orchestration.benchmarks`: register a tabular benchmark space;
* :mod:`~service.orchestration.search`: run one search job;
* :mod:`~service.orchestration.worker`: the job-queue worker process;
* :mod:`~service.orchestration.quickstart`: the main job, end to end.

Modules are imported by name (``from service.orchestration.search import
execute_search``), not re-exported here: most of them import torch or Optuna,
which commands such as ``hwnas --help`` must not pay for.
"""
