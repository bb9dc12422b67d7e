// Skeleton: the load generator is built in the benchmark work (issue 7).
return 0;
