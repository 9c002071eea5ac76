"""The training script: `accelerate launch sfd/train.py --forget "class=trouser"` (the same as `sfd-train`).

The command line lives in `sfd.cli.train`; this file is the path `accelerate launch` is given.
"""

from sfd.cli.train import main

if __name__ == "__main__":
    main()
