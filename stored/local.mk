# stored/: storage node (segment store library for now).
