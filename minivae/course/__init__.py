"""What an instructor uses, apart from the library a student reads: the student edition
(:mod:`~minivae.course.edition`), the library exercises' reference checks
(:mod:`~minivae.course.library_checks`), grading without nbgrader
(:mod:`~minivae.course.grading`), an nbgrader course (:mod:`~minivae.course.nbgrader`) and the
``assign`` and ``grade`` commands (:mod:`~minivae.course.cli`).

It needs the ``course`` extra (``pip install -e .[course]``: nbformat, nbclient, nbgrader); the
core installs without it. A student edition never contains this package: it holds reference
answers. The checks a lesson's cells call stay in :mod:`minivae.checks`, which students have.
"""
