"""The application shell: the ``kwshw`` command line (:mod:`kwshw.app.cli`), the whole job
(``kwshw all``, :mod:`kwshw.app.pipeline`) and the design report (:mod:`kwshw.app.report`).

The only part of ``kwshw`` that sits above :mod:`sim` and :mod:`boards`: the library below it
(every other module of ``kwshw``) never imports them, and :mod:`sim` and :mod:`boards` import
the library (``tests/test_layering.py`` keeps it so).
"""
