// Skeleton: the host is built in the Chord.Silo work (issue 5).
return 0;
