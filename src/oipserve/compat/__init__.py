"""Modules that let code written for another server run on oipserve unchanged.

:mod:`oipserve.compat.triton_python_backend_utils` is Triton's ``triton_python_backend_utils``
(``pb_utils``), installed under that name in ``sys.modules`` while a Triton Python-backend model
loads (see :mod:`oipserve.runtimes.triton_python`).
"""
