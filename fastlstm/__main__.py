"""`python -m fastlstm`: see fastlstm/demo.py."""
from fastlstm.demo import main

if __name__ == "__main__":
    main()
