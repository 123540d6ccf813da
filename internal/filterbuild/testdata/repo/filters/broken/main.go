// Command broken does not compile, for filterbuild's tests.
package main

func main() { undefined() }
