"""What every command-line tool shares: errors become one clear line and a non-zero exit."""
import sys

from .model_zoo import CheckpointUnavailableError

#: Errors a user can fix from the message alone; anything else keeps its traceback.
USER_ERRORS = (CheckpointUnavailableError, FileNotFoundError, ValueError, KeyError)


def run_cli(main, argv=None) -> None:
    try:
        main(argv)
    except USER_ERRORS as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {msg}', file=sys.stderr)
        sys.exit(2)
