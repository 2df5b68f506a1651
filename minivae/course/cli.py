"""``python -m minivae assign`` and ``python -m minivae grade``: :func:`add_commands` adds them to
the command line's subparsers; each command is a small function over the course package."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["add_commands"]


def add_commands(sub) -> None:
    """Add ``assign`` and ``grade`` to ``sub`` (what ``parser.add_subparsers()`` returned)."""
    assign = sub.add_parser(
        "assign",
        help="write the student edition of the lessons and library",
        description="Write OUT/lessons/*.ipynb and OUT/minivae/ with every solution (between "
        "### BEGIN SOLUTION and ### END SOLUTION) replaced by a stub that raises "
        "NotImplementedError, hidden tests removed and outputs cleared, and OUT/README.md and "
        "OUT/requirements.txt. With --nbgrader, write an nbgrader course folder instead.",
    )
    assign.add_argument("out", metavar="OUT", help="folder to write (must be empty or new)")
    assign.add_argument(
        "--lessons", default=None, metavar="DIR", help="instructor's lessons (default: lessons/)"
    )
    assign.add_argument(
        "--keep-library",
        action="store_true",
        help="copy the library unchanged: only the notebooks have exercises",
    )
    assign.add_argument(
        "--with-solutions",
        action="store_true",
        help="write the answer key instead (same layout, answers kept): grading it gives full "
        "marks",
    )
    assign.add_argument(
        "--nbgrader",
        default=None,
        metavar="ASSIGNMENT",
        help="write OUT as an nbgrader course: nbgrader_config.py and source/ASSIGNMENT/ "
        "(lessons, the stubbed library and a locked notebook grading it)",
    )
    assign.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")
    assign.set_defaults(handler=cmd_assign)

    grade = sub.add_parser(
        "grade",
        help="grade student editions and print a score per exercise",
        description="Run the library checks on FOLDER/minivae and execute FOLDER/lessons/*.ipynb "
        "(smoke mode) with the instructor's check cells restored; print one line per exercise "
        "and a total. Several folders (or --class DIR) grade a class in turn.",
    )
    grade.add_argument("folders", nargs="*", metavar="FOLDER", help="folders written by assign")
    grade.add_argument(
        "--class",
        dest="class_dir",
        default=None,
        metavar="DIR",
        help="grade every student folder in DIR (each holding lessons/ or minivae/)",
    )
    grade.add_argument(
        "--lessons", default=None, metavar="DIR", help="instructor's lessons (default: lessons/)"
    )
    grade.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="NAME",
        help="grade only these: 'library', a library check (e.g. linear_backward) or a lesson "
        "(e.g. 05 or 05_reparameterization)",
    )
    grade.add_argument(
        "--no-library",
        action="store_true",
        help="skip the library checks (for an edition written with --keep-library)",
    )
    grade.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds per notebook cell and per library check; a cell that runs longer is "
        "stopped and the rest still run (default: 120)",
    )
    grade.add_argument("--json", default=None, metavar="FILE", help="also write the scores here")
    grade.add_argument(
        "--csv",
        default=None,
        metavar="FILE",
        help="a table: a row per student, a column per exercise",
    )
    grade.add_argument(
        "--feedback", default=None, metavar="DIR", help="write DIR/<student>.md for each student"
    )
    grade.set_defaults(handler=cmd_grade)


def cmd_assign(args) -> int:
    if args.nbgrader is not None:
        from .nbgrader import write_course

        summary = write_course(args.out, args.nbgrader, lessons=args.lessons, force=args.force)
        print(
            f"wrote the nbgrader course {args.out}: source/{args.nbgrader}/ with "
            f"{len(summary['notebooks'])} notebooks and the stubbed library; next: "
            f"cd {args.out} && nbgrader generate_assignment {args.nbgrader}"
        )
        return 0
    from .edition import assign

    summary = assign(
        args.out,
        lessons=args.lessons,
        keep_library=args.keep_library,
        with_solutions=args.with_solutions,
        force=args.force,
    )
    kind = "answer key" if args.with_solutions else "student edition"
    print(
        f"wrote the {kind} to {args.out}: {len(summary['notebooks'])} lessons, "
        f"{len(summary['stubbed'])} library exercises"
    )
    for item in summary["stubbed"]:
        print(f"  {item}")
    return 0


def cmd_grade(args) -> int:
    from dataclasses import asdict

    from .edition import AssignmentError
    from .grading import class_folders, grade, grade_class

    folders = [Path(f) for f in args.folders]
    if args.class_dir is not None:
        folders += class_folders(args.class_dir)
    if not folders:
        raise AssignmentError("name a student's FOLDER to grade, or a class with --class DIR")
    options = dict(
        lessons=args.lessons, only=args.only, timeout=args.timeout, library=not args.no_library
    )
    if len(folders) == 1 and args.csv is None and args.class_dir is None:
        results = {folders[0].name: grade(folders[0], **options)}
        if args.feedback:
            from .grading import write_feedback

            name = folders[0].name
            write_feedback(results[name], Path(args.feedback) / f"{name}.md", name)
    else:
        results = grade_class(folders, csv_path=args.csv, feedback_dir=args.feedback, **options)
    if args.json:
        data = {k: [asdict(s) for s in v] for k, v in results.items()}
        if len(folders) == 1:
            data = next(iter(data.values()))
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    return 0
