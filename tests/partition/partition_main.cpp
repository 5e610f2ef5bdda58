// The partition tests' main(): into a network namespace of their own first (tests/support/netns.hpp),
// or, where the machine does not allow one, say so loudly; every test then skips, saying why.
#include <gtest/gtest.h>

#include <iostream>

#include "netns.hpp"

int main(int argc, char** argv) {
  const std::string why = bridge::testing::netns::enter(argc, argv);
  if (!why.empty())
    std::cerr << "\n*** partition tests cannot run here: " << why << ". Every Partition test is SKIPPED. ***\n\n";
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
